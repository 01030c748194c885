/** Consumes queue del_key (aws:rmq batches): applies each DELETE newer than the stored row, then updates the cache. */
import { createRedis } from '../../shared/cache.js'
import { getConfig } from '../../shared/config.js'
import { applyRmqEvent, type ConsumerDeps } from '../../shared/consumer.js'
import { lazy } from '../../shared/lazy.js'
import { openDatabase } from '../../shared/postgres.js'
import { Publisher } from '../../shared/queue.js'
import type { RmqEvent } from '../../shared/rmq-event.js'

let deps: ConsumerDeps | undefined

function getDeps(): ConsumerDeps {
  if (!deps) {
    const config = getConfig()
    const deadLetters = new Publisher({ url: config.amqpUrl, queues: [config.addQueue, config.delQueue], confirmTimeoutMs: config.publishTimeoutMs })
    deps = {
      db: lazy(() => openDatabase(config.databaseUrl)),
      redis: createRedis(config.redisUrl),
      cache: { prefix: config.cachePrefix, ttlSeconds: config.cacheTtlSeconds, negativeTtlSeconds: config.negativeTtlSeconds },
      publish: (queue, body, options) => deadLetters.publish(queue, body, options),
      tombstoneHorizonMs: config.tombstoneHorizonMs,
    }
  }
  return deps
}

export const handler = (event: RmqEvent) => applyRmqEvent(getDeps(), event, 'delete')
