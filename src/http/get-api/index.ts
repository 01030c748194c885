/**
 * GET /api?key=K[&minVersion=V[&wait=S]] — read one key, from Redis when cached,
 * else PostgreSQL. Both the 200 and the 404 say where the answer came from in
 * `x-kvarc-source` (a 404 served from a negative cache entry is a cache hit
 * too, and the 404 body is fixed by the contract), and carry the key's version
 * as the ETag (a tombstone's too: If-Match may name it). With minVersion the
 * answer is at least that new (read your writes), waiting up to S seconds for
 * the consumer to apply it; else 503 with Retry-After. A key with a TTL says
 * when it expires (`expiresAt`, epoch seconds); an expired key is a 404. Needs read access to
 * the key (auth.ts).
 */
import { authenticate, requireAccess } from '../../shared/auth.js'
import { getConfig } from '../../shared/config.js'
import { json, parseQuery, requireKeyParam, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { openReader } from '../../shared/open-reader.js'
import { parseVersionParam, parseWaitParam } from '../../shared/preconditions.js'
import { readThrough, type ReadResult } from '../../shared/reads.js'
import { keyProblem } from '../../shared/validate.js'

const clients = warm(() => openReader(getConfig()))

/** At least `minVersion`, waiting up to `wait` s; undefined when the key has not reached it by then. */
async function readAtLeast(key: string, minVersion: bigint, wait: number): Promise<ReadResult | undefined> {
  const deps = clients()
  return deps.notices.until(key, Date.now() + wait * 1000, () => readThrough(deps, key, minVersion))
}

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const principal = await authenticate(clients().auth, event)
  const params = parseQuery(event)
  const key = requireKeyParam(event, keyProblem, params)
  requireAccess(principal, key, 'read')
  const minVersion = parseVersionParam(params, 'minVersion', false)
  const wait = parseWaitParam(params)
  const result = minVersion === undefined ? await readThrough(clients(), key) : await readAtLeast(key, minVersion, wait)
  if (!result) {
    // An answer the client asked for, not a failure: returned, so it is not logged as one.
    const detail = `the key has not reached version ${minVersion} yet${wait > 0 ? ` after waiting ${wait} s` : ''}; retry shortly, or ask its receipt (GET /api/writes)`
    return json(503, { detail }, { 'retry-after': '1' })
  }
  const headers: Record<string, string> = { 'x-kvarc-source': result.source }
  if (result.version !== undefined) headers.etag = `"${result.version}"`
  if (!result.found) return json(404, { detail: 'key not found' }, headers)
  const body: Record<string, unknown> = { data: { key, value: result.value }, source: result.source, version: result.version }
  if (result.expiresAt !== null) body.expiresAt = result.expiresAt
  return json(200, body, headers)
})
