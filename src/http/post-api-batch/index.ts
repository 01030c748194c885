/**
 * POST /api/batch {"ops":[{"op":"put","key","value","ttl"?,"ifMatch"?},{"op":"delete","key","ifMatch"?}],"atomic":false|true}
 * — at most 128 ops, no key twice, every op validated (and its key's write
 * access checked) before anything is queued. Prefer: wait=S waits for the
 * outcomes (batch-writes.ts).
 */
import { authenticate, ForbiddenError, allows } from '../../shared/auth.js'
import { parseBatch } from '../../shared/batch.js'
import { queueAtomic, queueEach } from '../../shared/batch-writes.js'
import { getConfig } from '../../shared/config.js'
import { readJsonObject, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { openWriter } from '../../shared/open-writer.js'
import { parsePreferWait } from '../../shared/preconditions.js'

const clients = warm(() => openWriter(getConfig()))

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const principal = await authenticate(clients().auth, event)
  const batch = parseBatch(readJsonObject(event))
  const wait = parsePreferWait(event)
  const denied = batch.ops.find(op => !allows(principal.rules, op.key, 'write'))
  if (denied) throw new ForbiddenError(`token "${principal.name}" may not write ops[${denied.index}]'s key`)
  const config = getConfig()
  return batch.atomic ? queueAtomic(clients(), config, batch, wait) : queueEach(clients(), config, batch, wait)
})
