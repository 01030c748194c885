/**
 * The writer's clients for PUT and DELETE: a confirming publisher and a version
 * clock whose writer id is leased from PostgreSQL (writer-lease.ts). The writer
 * needs PostgreSQL only to take or renew its lease (every few minutes, ahead of
 * time), to check tokens, and to read receipts while a client waits (Prefer: wait), so a warm
 * writer keeps accepting writes through a short database outage. Redis serves
 * the early If-Match check and the notices that end a wait.
 */
import { cacheOptionsOf, createRedis } from './cache.js'
import type { AuthDeps } from './auth.js'
import type { Config } from './config.js'
import { lazy } from './lazy.js'
import { NoticeWaiters } from './notices.js'
import { openAuth } from './open-auth.js'
import { openDatabase } from './postgres.js'
import { Publisher } from './queue.js'
import type { OutcomeDeps } from './write-outcomes.js'
import { LeasedVersionClock } from './writer-lease.js'
import { WriteCoalescer, type WriterDeps } from './writer.js'

export function openWriter(config: Config): WriterDeps & OutcomeDeps & { auth: AuthDeps } {
  // A few connections: lease renewals are rare; receipt reads happen only while clients wait. Idle ones close.
  const db = lazy(() => openDatabase(config.databaseUrl, 4))
  return {
    clock: new LeasedVersionClock(db),
    writes: new WriteCoalescer(new Publisher({ url: config.amqpUrl, queues: [config.addQueue, config.delQueue], confirmTimeoutMs: config.publishTimeoutMs })),
    db,
    redis: createRedis(config.redisUrl),
    cache: cacheOptionsOf(config),
    notices: new NoticeWaiters(config.redisUrl, config.cachePrefix),
    tombstoneHorizonMs: config.tombstoneHorizonMs,
    auth: openAuth(config, db),
  }
}
