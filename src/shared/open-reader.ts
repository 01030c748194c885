/**
 * The readers' clients, built from the config: the record (database created and
 * migrated on first use), the cache and the token check, each on the service
 * URLs (secrets.ts, open-services.ts). GET /api reads through the record and
 * the cache, and waits on notices for a minVersion; /api/all pages the record
 * only, so it never opens Redis; receipts read the record and wait on notices.
 */
import type { AuthDeps } from './auth.js'
import { cacheOptionsOf } from './cache.js'
import type { Config } from './config.js'
import type { NoticeWaiters } from './notices.js'
import { openAuth } from './open-auth.js'
import { followRedis, FollowingNoticeWaiters } from './open-cache.js'
import { followDatabase } from './open-services.js'
import type { ReadDeps } from './reads.js'
import type { ReceiptDeps } from './receipts.js'
import { serviceUrlSource, type ServiceUrlSource } from './secrets.js'

export function openReader(config: Config, urls: ServiceUrlSource = serviceUrlSource(config)): ReadDeps & { notices: NoticeWaiters, auth: AuthDeps } {
  const db = followDatabase(urls)
  return {
    db,
    redis: followRedis(urls),
    cache: cacheOptionsOf(config),
    notices: new FollowingNoticeWaiters(urls, config.cachePrefix),
    auth: openAuth(config, db),
  }
}

export function openLister(config: Config, urls: ServiceUrlSource = serviceUrlSource(config)): { db: ReadDeps['db'], auth: AuthDeps } {
  const db = followDatabase(urls)
  return { db, auth: openAuth(config, db) }
}

export function openReceipts(config: Config, urls: ServiceUrlSource = serviceUrlSource(config)): ReceiptDeps & { auth: AuthDeps } {
  const db = followDatabase(urls)
  return {
    db,
    notices: new FollowingNoticeWaiters(urls, config.cachePrefix),
    tombstoneHorizonMs: config.tombstoneHorizonMs,
    auth: openAuth(config, db),
  }
}
