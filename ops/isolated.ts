/**
 * An isolated kvarc environment on the shared backing services: its own
 * PostgreSQL database, queue names and Redis key prefix, so a test, a bench
 * side or a soak run never disturbs a running stack or another run;
 * `cleanup()` removes all of it. Nothing is created here: the first host or
 * function that connects creates the database (src/shared/postgres.ts) and
 * declares the queues.
 *
 * The services are the TEST_*_URL variables' (default: localhost), read once
 * when this module loads.
 *
 * @example
 *   const iso = await isolate('soak')
 *   const stack = await startStack({ port: 0, env: iso.env })
 *   try { ... } finally { await stack.close(); await iso.cleanup() }
 */
import { connect } from 'amqplib'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import pg from 'pg'
import { loadConfig, type Config } from '../src/shared/config.js'
import { deadLetterQueueName } from '../src/shared/queue.js'

export const SERVICES = {
  postgres: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432',
  redis: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  amqp: process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
}

export interface Isolated {
  /** Names the database; the queues and the cache prefix start with it. */
  id: string
  /** The environment kvarc's config reads (src/shared/config.ts): hand it to a host, a function or a stack. */
  env: Record<string, string>
  config: Config
  /** Drops the database, deletes the queues and their dead-letter queues and the prefix's cache keys; every step runs even when one fails. */
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
    // Tests that check authentication set it to required; the rest exercise the API as on loopback.
    KVARC_AUTH: 'off',
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
