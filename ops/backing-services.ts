/**
 * Start-up checks: PostgreSQL (database created, schema migrated), Redis and
 * RabbitMQ (queues declared). When one is unreachable, the error names it, its
 * URL (password hidden) and how to start it.
 */
import { connect } from 'amqplib'
import { Redis } from 'ioredis'
import type { Config } from '../src/shared/config.js'
import { openDatabase } from '../src/shared/postgres.js'
import { assertQueues } from '../src/shared/queue.js'

export class BackingServiceError extends Error {
  override name = 'BackingServiceError'
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url
  }
}

const HOW_TO_START = {
  PostgreSQL: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  Redis: 'redis-server --daemonize yes --port 6379 --save "" --appendonly no',
  RabbitMQ: 'rabbitmq-server -detached',
}

/** The error for a service that does not answer: its name, its URL (password hidden), how to start it. */
export function unreachable(service: keyof typeof HOW_TO_START, url: string, error: unknown): BackingServiceError {
  const reason = error instanceof Error ? error.message : String(error)
  return new BackingServiceError(
    `${service} is unreachable at ${redactUrl(url)} (${reason || 'no answer'}).\n` +
    `  Start it, e.g.: ${HOW_TO_START[service]}\n` +
    `  or with Docker: docker compose -f compose/backing-services.yml up -d`,
    { cause: error },
  )
}

/** Checks all three services and prepares schema and queues; throws a BackingServiceError naming the first that fails. */
export async function prepareBackingServices(config: Config): Promise<void> {
  try {
    const pool = await openDatabase(config.databaseUrl, 1)
    await pool.end()
  } catch (error) {
    throw unreachable('PostgreSQL', config.databaseUrl, error)
  }

  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.ping()
  } catch (error) {
    throw unreachable('Redis', config.redisUrl, error)
  } finally {
    redis.disconnect()
  }

  try {
    const connection = await connect(config.amqpUrl, { timeout: 3000 })
    try {
      const channel = await connection.createChannel()
      await assertQueues(channel, [config.addQueue, config.delQueue])
    } finally {
      await connection.close().catch(() => {})
    }
  } catch (error) {
    throw unreachable('RabbitMQ', config.amqpUrl, error)
  }
}
