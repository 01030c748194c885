/**
 * The readers' clients, built from the config: the record (database created and
 * migrated on first use) and the cache. GET /api reads through both, and waits
 * on notices for a minVersion; /api/all pages the record only, so it never
 * opens Redis; receipts read the record and wait on notices.
 */
import { cacheOptionsOf, createRedis } from './cache.js'
import type { Config } from './config.js'
import { lazy } from './lazy.js'
import { NoticeWaiters } from './notices.js'
import { openDatabase } from './postgres.js'
import type { ReadDeps } from './reads.js'

export function openReader(config: Config): ReadDeps & { notices: NoticeWaiters } {
  return {
    db: lazy(() => openDatabase(config.databaseUrl)),
    redis: createRedis(config.redisUrl),
    cache: cacheOptionsOf(config),
    notices: new NoticeWaiters(config.redisUrl, config.cachePrefix),
  }
}

export function openLister(config: Config): { db: ReadDeps['db'] } {
  return { db: lazy(() => openDatabase(config.databaseUrl)) }
}

export function openReceipts(config: Config): { db: ReadDeps['db'], notices: NoticeWaiters, tombstoneHorizonMs: number } {
  return {
    db: lazy(() => openDatabase(config.databaseUrl)),
    notices: new NoticeWaiters(config.redisUrl, config.cachePrefix),
    tombstoneHorizonMs: config.tombstoneHorizonMs,
  }
}
