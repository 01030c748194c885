/**
 * The readers' clients, built from the config: the record (database created and
 * migrated on first use), the cache and the token check. GET /api reads through
 * the record and the cache, and waits on notices for a minVersion; /api/all
 * pages the record only, so it never opens Redis; receipts read the record and
 * wait on notices.
 */
import type { AuthDeps } from './auth.js'
import { cacheOptionsOf, createRedis } from './cache.js'
import type { Config } from './config.js'
import { lazy } from './lazy.js'
import { NoticeWaiters } from './notices.js'
import { openAuth } from './open-auth.js'
import { openDatabase } from './postgres.js'
import type { ReadDeps } from './reads.js'
import type { ReceiptDeps } from './receipts.js'

export function openReader(config: Config): ReadDeps & { notices: NoticeWaiters, auth: AuthDeps } {
  const db = lazy(() => openDatabase(config.databaseUrl))
  return {
    db,
    redis: createRedis(config.redisUrl),
    cache: cacheOptionsOf(config),
    notices: new NoticeWaiters(config.redisUrl, config.cachePrefix),
    auth: openAuth(config, db),
  }
}

export function openLister(config: Config): { db: ReadDeps['db'], auth: AuthDeps } {
  const db = lazy(() => openDatabase(config.databaseUrl))
  return { db, auth: openAuth(config, db) }
}

export function openReceipts(config: Config): ReceiptDeps & { auth: AuthDeps } {
  const db = lazy(() => openDatabase(config.databaseUrl))
  return {
    db,
    notices: new NoticeWaiters(config.redisUrl, config.cachePrefix),
    tombstoneHorizonMs: config.tombstoneHorizonMs,
    auth: openAuth(config, db),
  }
}
