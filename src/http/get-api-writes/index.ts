/**
 * GET /api/writes?key=K&version=V[&wait=S] — the receipt of one write: queued,
 * applied, superseded, rejected or dead-lettered (receipts.ts). With wait, it
 * answers as soon as the write is no longer queued, or after S seconds. A
 * receipt tells about a key: it needs read access to it (auth.ts).
 */
import { authenticate, requireAccess } from '../../shared/auth.js'
import { getConfig } from '../../shared/config.js'
import { HttpError, ServiceUnavailableError } from '../../shared/errors.js'
import { json, parseQuery, requireKeyParam, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { openReceipts } from '../../shared/open-reader.js'
import { parseVersionParam, parseWaitParam } from '../../shared/preconditions.js'
import { awaitReceipt, ReceiptExpiredError } from '../../shared/receipts.js'
import { keyProblem } from '../../shared/validate.js'

const clients = warm(() => openReceipts(getConfig()))

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const principal = await authenticate(clients().auth, event)
  const params = parseQuery(event)
  const key = requireKeyParam(event, keyProblem, params)
  requireAccess(principal, key, 'read')
  const version = parseVersionParam(params, 'version', true)
  const wait = parseWaitParam(params)
  try {
    return json(200, await awaitReceipt(clients(), key, version, wait))
  } catch (error) {
    if (error instanceof ReceiptExpiredError) throw new HttpError(410, error.message)
    throw new ServiceUnavailableError('the database is unavailable; retry shortly', { cause: error })
  }
})
