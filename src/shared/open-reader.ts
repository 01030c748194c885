/**
 * The readers' clients, built from the config: the record (database created and
 * migrated on first use) and the cache. GET /api reads through both; /api/all
 * pages the record only, so it never opens Redis.
 */
import { cacheOptionsOf, createRedis } from './cache.js'
import type { Config } from './config.js'
import { lazy } from './lazy.js'
import { openDatabase } from './postgres.js'
import type { ReadDeps } from './reads.js'

export function openReader(config: Config): ReadDeps {
  return {
    db: lazy(() => openDatabase(config.databaseUrl)),
    redis: createRedis(config.redisUrl),
    cache: cacheOptionsOf(config),
  }
}

export function openLister(config: Config): { db: ReadDeps['db'] } {
  return { db: lazy(() => openDatabase(config.databaseUrl)) }
}
