/**
 * Looking at a stack's state directly, around the stack: its record
 * (PostgreSQL), its cache (Redis, under its prefix) and its queues (RabbitMQ).
 * Each function opens and closes its own connection, so it works across
 * service restarts.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { connect } from 'amqplib'
import { Redis } from 'ioredis'
import pg from 'pg'
import { deadLetterQueueName, REASON_HEADER } from '../../../src/shared/queue.js'
import type { CacheHash, StoredRow } from './verify.js'

const run = promisify(execFile)
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

export interface QueueState { name: string, messages: number, unacknowledged: number, consumers: number }

/**
 * Messages on each queue, ready AND unacknowledged (a consumer holding a batch
 * it cannot apply shows here, not in the ready count), from `rabbitmqctl`.
 */
export async function queueStates(names: readonly string[]): Promise<QueueState[]> {
  const { stdout } = await run('rabbitmqctl', ['list_queues', '-q', '--no-table-headers', 'name', 'messages', 'messages_unacknowledged', 'consumers'], { timeout: 30_000 })
  const all = new Map<string, QueueState>()
  for (const line of stdout.split('\n')) {
    const [name, messages, unacked, consumers] = line.trim().split(/\s+/)
    if (name && messages !== undefined) all.set(name, { name, messages: Number(messages), unacknowledged: Number(unacked), consumers: Number(consumers) })
  }
  return names.map(name => all.get(name) ?? { name, messages: -1, unacknowledged: -1, consumers: 0 })
}

/** Ready messages per queue over AMQP (cheap; does not see unacknowledged ones). */
export async function readyCounts(amqpUrl: string, names: readonly string[]): Promise<number[]> {
  const connection = await connect(amqpUrl, { timeout: 3000 })
  try {
    const channel = await connection.createChannel()
    const counts: number[] = []
    for (const name of names) counts.push((await channel.checkQueue(name)).messageCount)
    await channel.close()
    return counts
  } finally {
    await connection.close().catch(() => {})
  }
}

/** Messages the consumer hosts at `consumerUrls` hold unacknowledged for `queues` (their /ready); undefined while one does not answer ready. */
async function heldByConsumers(consumerUrls: readonly string[], queues: readonly string[]): Promise<number | undefined> {
  let held = 0
  for (const url of consumerUrls) {
    const response = await fetch(`${url}/ready`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined)
    if (!response?.ok) return undefined
    const body = await response.json() as { held?: Record<string, number> }
    for (const queue of queues) held += body.held?.[queue] ?? 0
  }
  return held
}

/**
 * Waits until the write queues hold nothing: no message ready (AMQP, exact),
 * none held by a consumer host (its /ready, exact), and rabbitmqctl agreeing,
 * twice in a row 200 ms apart, so a message in flight between broker and
 * consumer is not missed. The consumer hosts' word is needed because
 * rabbitmqctl's unacknowledged count for a quorum queue is refreshed on a
 * timer: it read 0 while a consumer still held thousands of messages it was
 * retrying during a Redis outage, and a check trusting it alone ran the
 * verifier early. Returns the milliseconds it took; throws with the last
 * state after `timeoutMs`.
 */
export async function waitDrained(amqpUrl: string, queues: readonly string[], timeoutMs: number, consumerUrls: readonly string[] = []): Promise<number> {
  const started = Date.now()
  let last = 'not checked'
  let cleanInARow = 0
  while (Date.now() - started < timeoutMs) {
    try {
      const ready = await readyCounts(amqpUrl, queues)
      last = `ready ${queues.map((q, i) => `${q}=${ready[i]}`).join(' ')}`
      const held = ready.every(n => n === 0) ? await heldByConsumers(consumerUrls, queues) : undefined
      if (held !== undefined) last += `; held by consumer hosts ${held}`
      if (held === 0) {
        const states = await queueStates(queues)
        last = states.map(s => `${s.name}: ${s.messages} messages, ${s.unacknowledged} unacked, ${s.consumers} consumers`).join('; ')
        if (states.every(s => s.messages === 0)) cleanInARow++
        else cleanInARow = 0
      } else cleanInARow = 0
      if (cleanInARow >= 2) return Date.now() - started
    } catch (error) {
      cleanInARow = 0
      last = `broker not answering: ${(error as Error).message}`
    }
    await sleep(200)
  }
  throw new Error(`queues did not drain within ${timeoutMs} ms: ${last}`)
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
      const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM kv_cache_repair')
      left = rows[0]!.n
      if (left === '0') return Date.now() - started
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
