/**
 * DELETE /api?key=K — stamp a version and queue a tombstone; 200 only after the
 * broker confirmed. If-Match / If-None-Match make it conditional; Prefer:
 * wait=S waits for its outcome (write-outcomes.ts). Needs write access to the
 * key (auth.ts).
 */
import { authenticate, requireAccess } from '../../shared/auth.js'
import { getConfig } from '../../shared/config.js'
import { requireKeyParam, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { openWriter } from '../../shared/open-writer.js'
import { keyProblem } from '../../shared/validate.js'
import { writeWithOutcome } from '../../shared/write-outcomes.js'

const clients = warm(() => openWriter(getConfig()))

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const principal = await authenticate(clients().auth, event)
  const key = requireKeyParam(event, keyProblem)
  requireAccess(principal, key, 'write')
  return writeWithOutcome(clients(), event, getConfig().delQueue, key, null)
})
