/** DELETE /api?key=K — stamp a version and queue a tombstone; 200 only after the broker confirmed. */
import { getConfig } from '../../shared/config.js'
import { json, requireKeyParam, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { openWriter } from '../../shared/open-writer.js'
import { keyProblem } from '../../shared/validate.js'
import { queueWrite, type WriterDeps } from '../../shared/writer.js'

let writer: WriterDeps | undefined

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const key = requireKeyParam(event, keyProblem)
  const config = getConfig()
  writer ??= openWriter(config)
  const version = await queueWrite(writer, config.delQueue, key, null)
  return json(200, { status: 'queued', version })
})
