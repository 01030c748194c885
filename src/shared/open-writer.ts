/**
 * The writer's clients for PUT and DELETE: a confirming publisher and a version
 * clock whose writer id is leased from PostgreSQL (writer-lease.ts), each on
 * the service URLs (secrets.ts, open-services.ts). The writer needs PostgreSQL
 * only to take or renew its lease (every few minutes, ahead of time), to check
 * tokens, and to read receipts while a client waits (Prefer: wait), so a warm
 * writer keeps accepting writes through a short database outage. Redis serves
 * the early If-Match check and the notices that end a wait.
 */
import type { AuthDeps } from './auth.js'
import { cacheOptionsOf } from './cache.js'
import type { Config } from './config.js'
import { openAuth } from './open-auth.js'
import { followRedis, FollowingNoticeWaiters } from './open-cache.js'
import { followPublisher } from './open-publisher.js'
import { followDatabase } from './open-services.js'
import { serviceUrlSource, type ServiceUrlSource } from './secrets.js'
import type { OutcomeDeps } from './write-outcomes.js'
import { LeasedVersionClock } from './writer-lease.js'
import { WriteCoalescer, type WriterDeps } from './writer.js'

export function openWriter(config: Config, urls: ServiceUrlSource = serviceUrlSource(config)): WriterDeps & OutcomeDeps & { auth: AuthDeps } {
  // A few connections: lease renewals are rare; receipt reads happen only while clients wait. Idle ones close.
  const db = followDatabase(urls, 4)
  return {
    clock: new LeasedVersionClock(db),
    writes: new WriteCoalescer(followPublisher(urls, { queues: [config.addQueue, config.delQueue], confirmTimeoutMs: config.publishTimeoutMs })),
    db,
    redis: followRedis(urls),
    cache: cacheOptionsOf(config),
    notices: new FollowingNoticeWaiters(urls, config.cachePrefix),
    tombstoneHorizonMs: config.tombstoneHorizonMs,
    auth: openAuth(config, db),
  }
}
