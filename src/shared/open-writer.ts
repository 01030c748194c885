/**
 * The writer's clients for PUT and DELETE: a confirming publisher and a version
 * clock whose writer id comes from PostgreSQL once per cold start (a cycling
 * sequence, so concurrent writers never share one). PostgreSQL being down at a
 * cold start is a 503; a warm writer never needs it again.
 */
import type { Config } from './config.js'
import { ServiceUnavailableError } from './errors.js'
import { lazy } from './lazy.js'
import { openDatabase } from './postgres.js'
import { Publisher } from './queue.js'
import { nextWriterId } from './store.js'
import { VersionClock } from './version.js'
import type { WriterDeps } from './writer.js'

export function openWriter(config: Config): () => Promise<WriterDeps> {
  return lazy(async () => {
    let writerId: number
    try {
      const db = await openDatabase(config.databaseUrl, 1)
      try {
        writerId = await nextWriterId(db)
      } finally {
        await db.end().catch(() => {})
      }
    } catch (error) {
      throw new ServiceUnavailableError('the database is unavailable, so this writer cannot start; retry shortly', { cause: error })
    }
    return {
      clock: new VersionClock(writerId),
      publisher: new Publisher({ url: config.amqpUrl, queues: [config.addQueue, config.delQueue], confirmTimeoutMs: config.publishTimeoutMs }),
    }
  })
}
