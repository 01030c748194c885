/** GET /api?key=K — read one key, from Redis when cached, else PostgreSQL. */
import { cacheOptionsOf, createRedis } from '../../shared/cache.js'
import { getConfig } from '../../shared/config.js'
import { NotFoundError } from '../../shared/errors.js'
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
  if (!result.found) throw new NotFoundError()
  return json(200, { data: { key, value: result.value }, source: result.source, version: result.version })
})
