/**
 * The consumers' clients, built from the config: the record (database created
 * and migrated on first use), the cache, and a confirming publisher for dead
 * letters. Shared by add-key and del-key, which differ only in the kind of write.
 */
import { cacheOptionsOf, createRedis } from './cache.js'
import { CacheHealth } from './cache-repair.js'
import type { Config } from './config.js'
import type { ConsumerDeps } from './consumer.js'
import { lazy } from './lazy.js'
import { openDatabase } from './postgres.js'
import { Publisher } from './queue.js'

export function openConsumer(config: Config): ConsumerDeps {
  const deadLetters = new Publisher({ url: config.amqpUrl, queues: [config.addQueue, config.delQueue], confirmTimeoutMs: config.publishTimeoutMs })
  return {
    db: lazy(() => openDatabase(config.databaseUrl)),
    redis: createRedis(config.redisUrl),
    cache: cacheOptionsOf(config),
    cacheHealth: new CacheHealth(),
    publish: (queue, body, options) => deadLetters.publish(queue, body, options),
    tombstoneHorizonMs: config.tombstoneHorizonMs,
  }
}
