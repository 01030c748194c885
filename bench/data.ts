/**
 * The bench's data set, in its own database and cache prefix:
 *   hit-<i>   rows in PostgreSQL and entries in the cache (kvarc's layout,
 *             written with kvarc's own set-if-newer script)
 *   miss-<i>  rows in PostgreSQL only, more of them than a run can read, so a
 *             GET-miss run reads each key once and every answer comes from
 *             PostgreSQL (checked afterwards by counting the cache fills)
 *   rmw-<i>   rows in PostgreSQL only, for put-if-match: its first GET of a key
 *             must find an ETag to send back
 * Versions are an hour old: every write the bench makes is newer.
 */
import { connect } from 'amqplib'
import { Redis } from 'ioredis'
import { cacheSetIfNewer, createRedis } from '../src/shared/cache.js'
import type { Config } from '../src/shared/config.js'
import { openDatabase } from '../src/shared/postgres.js'
import { assertQueues } from '../src/shared/queue.js'
import { versionAtMillis } from '../src/shared/version.js'

export interface DataSet { hitKeys: number, missKeys: number, valueBytes: number, rmwKeys?: number }

export async function prepareData(config: Config, data: DataSet): Promise<void> {
  const db = await openDatabase(config.databaseUrl, 1)
  const version = versionAtMillis(Date.now() - 3_600_000)
  const value = 'v'.repeat(data.valueBytes)
  try {
    // One statement per family: generate_series is the fastest way to lay down 10^5–10^6 rows.
    for (const [family, count] of [['hit', data.hitKeys], ['miss', data.missKeys], ['rmw', data.rmwKeys ?? 0]] as const) {
      if (count === 0) continue
      await db.query(
        `INSERT INTO kv_store (key, value, version, deleted)
         SELECT $1 || i, $2, $3::bigint + i, false FROM generate_series(0, $4::int - 1) AS i
         ON CONFLICT (key) DO NOTHING`,
        [`${family}-`, value, version.toString(), count])
    }
    await db.query('VACUUM ANALYZE kv_store')
  } finally {
    await db.end()
  }

  const redis = createRedis(config.redisUrl)
  try {
    const options = { prefix: config.cachePrefix, ttlSeconds: 3600, negativeTtlSeconds: 60 }
    for (let start = 0; start < data.hitKeys; start += 1000) {
      const batch: Promise<number>[] = []
      for (let i = start; i < Math.min(start + 1000, data.hitKeys); i++) {
        batch.push(cacheSetIfNewer(redis, options, `hit-${i}`, { value, version: (version + BigInt(i)).toString(), deleted: false }))
      }
      await Promise.all(batch)
    }
  } finally {
    redis.disconnect()
  }

  const amqp = await connect(config.amqpUrl)
  try {
    await assertQueues(await amqp.createChannel(), [config.addQueue, config.delQueue])
  } finally {
    await amqp.close()
  }
}

/**
 * Walks the cache entries under the prefix for keys starting with `family`,
 * handing each SCAN page's keys to `each`; resolves with the sum of what it returned.
 */
export async function scanCached(config: Pick<Config, 'redisUrl' | 'cachePrefix'>, family: string, each: (redis: Redis, keys: string[]) => Promise<number> | number): Promise<number> {
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 2 })
  redis.on('error', () => {}) // the failed command says it
  try {
    let cursor = '0'
    let total = 0
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.cachePrefix}${family}*`, 'COUNT', 10_000)
      if (keys.length) total += await each(redis, keys)
      cursor = next
    } while (cursor !== '0')
    return total
  } finally {
    redis.disconnect()
  }
}

/** How many cache entries exist under the prefix for keys starting with `family`: the number of distinct keys filled. */
export function countCached(config: Config, family: string): Promise<number> {
  return scanCached(config, family, (_, keys) => keys.length)
}

/** Empties the bench's queues between scenarios, so one side's backlog never slows the next. */
export async function purgeQueues(config: Config): Promise<number> {
  const amqp = await connect(config.amqpUrl)
  try {
    const channel = await amqp.createChannel()
    let purged = 0
    for (const queue of [config.addQueue, config.delQueue]) purged += (await channel.purgeQueue(queue)).messageCount
    return purged
  } finally {
    await amqp.close()
  }
}
