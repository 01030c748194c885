/**
 * Looking at a stack's state directly, around the stack: its record
 * (PostgreSQL), its cache (Redis, under its prefix) and its queues (RabbitMQ).
 * Each function opens and closes its own connection, so it works across
 * service restarts. Whether the queues drained is ops/drained.ts's (the soak
 * waits for it too).
 */
import { connect } from 'amqplib'
import { Redis } from 'ioredis'
import pg from 'pg'
import { countStale } from '../../../src/shared/cache-repair.js'
import { deadLetterQueueName, REASON_HEADER } from '../../../src/shared/queue.js'
import type { CacheHash, StoredRow } from './verify.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** Every row whose key starts with `prefix` (tombstones included). */
export async function readRows(databaseUrl: string, prefix: string): Promise<Map<string, StoredRow>> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    // A range on the primary key ("C" collation): the prefix is plain ASCII in every run.
    const { rows } = await client.query<StoredRow & { key: string }>(
      'SELECT key, value, version::text AS version, deleted FROM kv_store WHERE key >= $1 AND key < $2',
      [prefix, prefix + '\u{10ffff}'],
    )
    return new Map(rows.map(r => [r.key, { value: r.value, version: r.version, deleted: r.deleted }]))
  } finally {
    await client.end().catch(() => {})
  }
}

/** The cache hash of each key (absent keys are left out), read in pipelined chunks. */
export async function readCache(redisUrl: string, cachePrefix: string, keys: Iterable<string>): Promise<Map<string, CacheHash>> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2, enableAutoPipelining: true })
  redis.on('error', () => {})
  try {
    const list = [...keys]
    const out = new Map<string, CacheHash>()
    for (let i = 0; i < list.length; i += 1000) {
      const chunk = list.slice(i, i + 1000)
      const [hashes, ttls] = await Promise.all([
        Promise.all(chunk.map(k => redis.hgetall(cachePrefix + k))),
        Promise.all(chunk.map(k => redis.pttl(cachePrefix + k))),
      ])
      hashes.forEach((hash, j) => {
        if (hash.ver !== undefined) out.set(chunk[j] as string, { ver: hash.ver, del: hash.del ?? '', val: hash.val ?? '', ttlMs: ttls[j] as number })
      })
    }
    return out
  } finally {
    redis.disconnect()
  }
}

/** Deletes every Redis key under `prefix` (SCAN + UNLINK): a "flush" that leaves other tenants alone. */
export async function deletePrefix(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 })
  redis.on('error', () => {})
  let deleted = 0
  try {
    let cursor = '0'
    do {
      // Large COUNT: Redis is shared, and SCAN walks every tenant's keys to find this prefix's.
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 20000)
      if (keys.length) deleted += await redis.unlink(...keys)
      cursor = next
    } while (cursor !== '0')
    return deleted
  } finally {
    redis.disconnect()
  }
}

/**
 * Waits until no cache entry awaits repair (kv_cache_repair is empty): after a
 * Redis outage the consumers repair the entries they could not update once
 * Redis answers, which may be after the queues drained. Returns the
 * milliseconds it took; throws with the count left after `timeoutMs`.
 */
export async function waitCacheRepaired(databaseUrl: string, timeoutMs: number): Promise<number> {
  const started = Date.now()
  let left = 'not checked'
  while (Date.now() - started < timeoutMs) {
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 })
    try {
      await client.connect()
      const stale = await countStale(client)
      left = String(stale)
      if (stale === 0) return Date.now() - started
    } catch (error) {
      left = `PostgreSQL not answering: ${(error as Error).message}`
    } finally {
      await client.end().catch(() => {})
    }
    await sleep(200)
  }
  throw new Error(`cache entries still awaiting repair after ${timeoutMs} ms: ${left}`)
}

export interface DeadLetter { queue: string, body: Buffer, reason: string | undefined, sourceQueue: string | undefined }

/** Takes every message from the dead-letter queues of `queues` (at most `max` each). */
export async function takeDeadLetters(amqpUrl: string, queues: readonly string[], max = 10_000): Promise<DeadLetter[]> {
  const connection = await connect(amqpUrl, { timeout: 3000 })
  try {
    const channel = await connection.createChannel()
    const out: DeadLetter[] = []
    for (const queue of queues) {
      const dlq = deadLetterQueueName(queue)
      for (let i = 0; i < max; i++) {
        const message = await channel.get(dlq, { noAck: true })
        if (message === false) break
        const headers = message.properties.headers ?? {}
        const text = (v: unknown) => (v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString() : String(v))
        out.push({ queue: dlq, body: message.content, reason: text(headers[REASON_HEADER]), sourceQueue: text(headers['x-kvarc-source-queue']) })
      }
    }
    await channel.close()
    return out
  } finally {
    await connection.close().catch(() => {})
  }
}

/** Publishes raw bodies straight to a queue (persistent, confirmed), bypassing the API. */
export async function publishRaw(amqpUrl: string, queue: string, bodies: readonly Buffer[]): Promise<void> {
  const connection = await connect(amqpUrl, { timeout: 3000 })
  try {
    const channel = await connection.createConfirmChannel()
    for (const body of bodies) channel.publish('', queue, body, { persistent: true, contentType: 'application/json' })
    await channel.waitForConfirms()
    await channel.close()
  } finally {
    await connection.close().catch(() => {})
  }
}
