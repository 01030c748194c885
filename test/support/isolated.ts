/**
 * Test isolation against the real backing services: each call gets its own
 * PostgreSQL database, queue names and Redis key prefix, so tests never disturb
 * a running stack or each other; `cleanup()` removes all of it.
 *
 * @example
 *   const iso = await isolate()
 *   Object.assign(process.env, iso.env)   // before the handler's first call
 *   afterAll(() => iso.cleanup())
 */
import { connect } from 'amqplib'
import { randomBytes, randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import pg from 'pg'
import { loadConfig, type Config } from '../../src/shared/config.js'
import { assertQueues, deadLetterQueueName } from '../../src/shared/queue.js'

export const SERVICES = {
  postgres: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432',
  redis: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  amqp: process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
}

export interface Isolated {
  id: string
  env: Record<string, string>
  config: Config
  cleanup(): Promise<void>
}

export async function isolate(label = 't'): Promise<Isolated> {
  const id = `kvarc_${label}_${randomBytes(4).toString('hex')}`
  const env = {
    DATABASE_URL: `${SERVICES.postgres}/${id}`,
    REDIS_URL: SERVICES.redis,
    AMQP_URL: SERVICES.amqp,
    KVARC_ADD_QUEUE: `${id}.add_key`,
    KVARC_DEL_QUEUE: `${id}.del_key`,
    KVARC_CACHE_PREFIX: `${id}:`,
    KVARC_PUBLISH_TIMEOUT_MS: '3000',
    LOG_LEVEL: 'silent',
  }
  const config = loadConfig(env)
  return { id, env, config, cleanup: () => cleanupIsolated(id, config) }
}

async function cleanupIsolated(id: string, config: Config): Promise<void> {
  const errors: unknown[] = []
  const admin = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres` })
  try {
    await admin.connect()
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(id)} WITH (FORCE)`)
  } catch (error) { errors.push(error) } finally { await admin.end().catch(() => {}) }

  try {
    const connection = await connect(SERVICES.amqp)
    const channel = await connection.createChannel()
    for (const queue of [config.addQueue, config.delQueue]) {
      await channel.deleteQueue(queue)
      await channel.deleteQueue(deadLetterQueueName(queue))
    }
    await connection.close()
  } catch (error) { errors.push(error) }

  const redis = new Redis(SERVICES.redis)
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.cachePrefix}*`, 'COUNT', 1000)
      if (keys.length) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } catch (error) { errors.push(error) } finally { redis.disconnect() }
  if (errors.length) throw new AggregateError(errors, `cleanup of ${id} failed`)
}

/** Waits until `check` returns a truthy value, polling; fails with `what` after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    try {
      const value = await check()
      if (value) return value
    } catch (error) { lastError = error }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: lastError })
    await new Promise(resolve => setTimeout(resolve, delay))
  }
}

/** An API Gateway v2 (HTTP API) event, as sandbox and API Gateway build it. */
export function httpEvent(method: string, path: string, options: { query?: string, body?: string, base64?: boolean, headers?: Record<string, string> } = {}) {
  const routeKey = `${method} ${path}`
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: { 'content-type': 'application/json', ...options.headers },
    requestContext: { http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, routeKey, timeEpoch: Math.floor(Date.now() / 1000) },
    ...(options.body === undefined ? {} : { body: options.body }),
    isBase64Encoded: options.base64 ?? false,
  }
}

/**
 * The event EventBridge sends the target of a scheduled rule ("Scheduled Event",
 * as in the AWS docs' example); `time` is the occurrence, to the second.
 */
export function scheduledEvent(rule = 'KvarcStaging-PurgeTombstonesScheduledEvent-1Q2W3E4R5T6Y', at = new Date()) {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: [`arn:aws:events:us-east-1:123456789012:rule/${rule}`],
    detail: {},
  }
}

/** Declares an isolated environment's queues (and dead-letter queues) up front, so "nothing was queued" can be checked before the first write. */
export async function declareQueues(iso: Isolated): Promise<void> {
  const connection = await connect(SERVICES.amqp)
  try {
    await assertQueues(await connection.createChannel(), [iso.config.addQueue, iso.config.delQueue])
  } finally {
    await connection.close()
  }
}
