/**
 * The consumers' clients, built from the config: the record (database created
 * and migrated on first use), the cache, and a confirming publisher for dead
 * letters, each on the service URLs (secrets.ts, open-services.ts). Shared by
 * add-key and del-key, which differ only in the kind of write.
 */
import { cacheOptionsOf } from './cache.js'
import { CacheHealth } from './cache-repair.js'
import type { Config } from './config.js'
import type { ConsumerDeps } from './consumer.js'
import { followRedis } from './open-cache.js'
import { followPublisher } from './open-publisher.js'
import { followDatabase } from './open-services.js'
import { serviceUrlSource, type ServiceUrlSource } from './secrets.js'

export function openConsumer(config: Config, urls: ServiceUrlSource = serviceUrlSource(config)): ConsumerDeps {
  const deadLetters = followPublisher(urls, { queues: [config.addQueue, config.delQueue], confirmTimeoutMs: config.publishTimeoutMs })
  return {
    db: followDatabase(urls),
    redis: followRedis(urls),
    cache: cacheOptionsOf(config),
    cacheHealth: new CacheHealth(),
    publish: (queue, body, options) => deadLetters.publish(queue, body, options),
    tombstoneHorizonMs: config.tombstoneHorizonMs,
  }
}
