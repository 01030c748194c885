/** DELETE /api?key=K — stamp a version and queue a tombstone; 200 only after the broker confirmed. */
import { getConfig } from '../../shared/config.js'
import { json, requireKeyParam, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { openWriter } from '../../shared/open-writer.js'
import { keyProblem } from '../../shared/validate.js'
import { queueWrite } from '../../shared/writer.js'

const clients = warm(() => openWriter(getConfig()))

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const key = requireKeyParam(event, keyProblem)
  const config = getConfig()
  const version = await queueWrite(clients(), config.delQueue, key, null)
  return json(200, { status: 'queued', version })
})
