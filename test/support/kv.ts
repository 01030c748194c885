/**
 * Small helpers for tests of the functions: reading what the API queued,
 * feeding consumers real `aws:rmq` events, looking at the record and the cache
 * directly. Each takes its URLs/clients explicitly; none keeps global state.
 *
 * @example
 *   const queued = await takeMessages(iso.env.AMQP_URL, iso.config.addQueue)
 *   await addKey(buildRmqEvent(iso.config.addQueue, queued))
 */
import { connect, type GetMessage } from 'amqplib'
import { Redis } from 'ioredis'
import pg from 'pg'
import { buildRmqEvent, type DeliveredMessage } from '../../runtime/rmq/event.js'
import { applyRmqEvent, type ConsumerDeps } from '../../src/shared/consumer.js'
import { queueDepth } from '../../ops/queues.js'
import { eventually, type Isolated } from './isolated.js'

// Its home is ops/queues.ts (bench counts the backlog with it too).
export { queueDepth } from '../../ops/queues.js'

/** Narrows an amqplib message to what `buildRmqEvent` reads. */
function delivered(message: GetMessage): DeliveredMessage {
  const p = message.properties
  const defined = <T>(v: T | undefined | null): T | undefined => (v === null ? undefined : v)
  return {
    content: message.content,
    redelivered: message.fields.redelivered,
    properties: {
      contentType: defined(p.contentType),
      contentEncoding: defined(p.contentEncoding),
      headers: defined(p.headers) as Record<string, unknown> | undefined,
      deliveryMode: defined(p.deliveryMode),
      priority: defined(p.priority),
      correlationId: defined(p.correlationId),
      replyTo: defined(p.replyTo),
      expiration: defined(p.expiration),
      messageId: defined(p.messageId),
      timestamp: defined(p.timestamp),
      type: defined(p.type),
      userId: defined(p.userId),
      appId: defined(p.appId),
      clusterId: defined(p.clusterId),
    },
  }
}

/**
 * Takes (and acknowledges) every message currently on `queue`, at most `max`.
 * Messages are confirmed before the API answers, so they are there when this runs.
 */
export async function takeMessages(amqpUrl: string, queue: string, max = 10_000): Promise<DeliveredMessage[]> {
  const connection = await connect(amqpUrl)
  try {
    const channel = await connection.createChannel()
    const out: DeliveredMessage[] = []
    for (let i = 0; i < max; i++) {
      const message = await channel.get(queue, { noAck: true })
      if (message === false) break
      out.push(delivered(message))
    }
    await channel.close()
    return out
  } finally {
    await connection.close().catch(() => {})
  }
}

/** A message as a publisher other than the API might put it on a queue. */
export function rawMessage(body: string | Buffer, messageId?: string): DeliveredMessage {
  return { content: typeof body === 'string' ? Buffer.from(body) : body, redelivered: false, properties: { contentType: 'application/json', deliveryMode: 2, ...(messageId ? { messageId } : {}) } }
}

/** A well-formed write message, as the API encodes it. */
export function writeMessage(key: string, value: string | null, version: bigint): DeliveredMessage {
  const body = value === null ? { key, version: version.toString() } : { key, value, version: version.toString() }
  return rawMessage(JSON.stringify(body), version.toString())
}

export interface Row { key: string, value: string | null, version: string, deleted: boolean }

/** Every row of kv_store (tombstones included), in key order. */
export async function allRows(db: pg.Pool | pg.Client): Promise<Row[]> {
  const { rows } = await db.query<Row>('SELECT key, value, version::text AS version, deleted FROM kv_store ORDER BY key')
  return rows
}

export interface CachedEntry { ver: string, del: string, val: string }

/** The raw cache hash of a key, or undefined when absent. */
export async function cachedEntry(redis: Redis, prefix: string, key: string): Promise<CachedEntry | undefined> {
  const hash = await redis.hgetall(prefix + key)
  return hash.ver === undefined ? undefined : { ver: hash.ver, del: hash.del ?? '', val: hash.val ?? '' }
}

/** A parsed JSON response body; fails the test when the body is not JSON. */
export function bodyOf(result: { body: string }): Record<string, unknown> {
  return JSON.parse(result.body) as Record<string, unknown>
}

/**
 * Runs a consumer once on everything queued now on the kind's queue, after at
 * least one message arrived: a test's stand-in for the consumer host.
 */
export async function consumeQueued(iso: Isolated, consumer: ConsumerDeps, kind: 'put' | 'delete'): Promise<void> {
  const name = kind === 'put' ? iso.config.addQueue : iso.config.delQueue
  await eventually(async () => (await queueDepth(iso.env.AMQP_URL!, name)) > 0, `a message on ${name}`)
  await applyRmqEvent(consumer, buildRmqEvent(name, await takeMessages(iso.env.AMQP_URL!, name)), kind)
}

/** Each key under `prefix` and its value in the record; null for a tombstone. */
export async function valuesUnder(db: pg.Pool | pg.Client, prefix: string): Promise<Record<string, string | null>> {
  return Object.fromEntries((await allRows(db)).filter(r => r.key.startsWith(prefix)).map(r => [r.key, r.deleted ? null : r.value]))
}
