/**
 * The writer's clients for PUT and DELETE: a confirming publisher and a version
 * clock whose writer id is leased from PostgreSQL (writer-lease.ts). The writer
 * needs PostgreSQL only to take or renew its lease (every few minutes, ahead of
 * time), so a warm writer keeps accepting writes through a short database outage.
 */
import type { Config } from './config.js'
import { lazy } from './lazy.js'
import { openDatabase } from './postgres.js'
import { Publisher } from './queue.js'
import { LeasedVersionClock } from './writer-lease.js'
import { WriteCoalescer, type WriterDeps } from './writer.js'

export function openWriter(config: Config): WriterDeps {
  // One connection is plenty for a lease renewal every few minutes; it closes when idle.
  const db = lazy(() => openDatabase(config.databaseUrl, 1))
  return {
    clock: new LeasedVersionClock(db),
    writes: new WriteCoalescer(new Publisher({ url: config.amqpUrl, queues: [config.addQueue, config.delQueue], confirmTimeoutMs: config.publishTimeoutMs })),
  }
}
