/**
 * GET /api?key=K — read one key, from Redis when cached, else PostgreSQL. Both
 * the 200 and the 404 say where the answer came from in `x-kvarc-source`: a
 * 404 served from a negative cache entry is a cache hit too, and the 404 body
 * is fixed by the contract.
 */
import { cacheOptionsOf, createRedis } from '../../shared/cache.js'
import { getConfig } from '../../shared/config.js'
import { json, requireKeyParam, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { lazy } from '../../shared/lazy.js'
import { openDatabase } from '../../shared/postgres.js'
import { readThrough, type ReadDeps } from '../../shared/reads.js'
import { keyProblem } from '../../shared/validate.js'

let deps: ReadDeps | undefined

function getDeps(): ReadDeps {
  if (!deps) {
    const config = getConfig()
    deps = {
      db: lazy(() => openDatabase(config.databaseUrl)),
      redis: createRedis(config.redisUrl),
      cache: cacheOptionsOf(config),
    }
  }
  return deps
}

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const key = requireKeyParam(event, keyProblem)
  const result = await readThrough(getDeps(), key)
  const headers = { 'x-kvarc-source': result.source }
  if (!result.found) return json(404, { detail: 'key not found' }, headers)
  return json(200, { data: { key, value: result.value }, source: result.source, version: result.version }, headers)
})
