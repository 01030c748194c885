/**
 * GET /api?key=K — read one key, from Redis when cached, else PostgreSQL. Both
 * the 200 and the 404 say where the answer came from in `x-kvarc-source`: a
 * 404 served from a negative cache entry is a cache hit too, and the 404 body
 * is fixed by the contract.
 */
import { getConfig } from '../../shared/config.js'
import { json, requireKeyParam, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { openReader } from '../../shared/open-reader.js'
import { readThrough } from '../../shared/reads.js'
import { keyProblem } from '../../shared/validate.js'

const clients = warm(() => openReader(getConfig()))

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const key = requireKeyParam(event, keyProblem)
  const result = await readThrough(clients(), key)
  const headers = { 'x-kvarc-source': result.source }
  if (!result.found) return json(404, { detail: 'key not found' }, headers)
  return json(200, { data: { key, value: result.value }, source: result.source, version: result.version }, headers)
})
