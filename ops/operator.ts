/**
 * The operator's endpoints every host answers itself (never a function):
 * GET /health (the process is alive), GET /ready (PostgreSQL, Redis and
 * RabbitMQ reachable, with queue depths) and GET /metrics (Prometheus text).
 * None may be cached. Their clients are opened on first use, one of each per
 * host and reused, and every check is bounded by a short timeout so a probe
 * never hangs on a dead service.
 */
import { connect, type Channel, type ChannelModel } from 'amqplib'
import { Redis } from 'ioredis'
import type pg from 'pg'
import { hostname } from 'node:os'
import type { Config } from '../src/shared/config.js'
import { createPool } from '../src/shared/postgres.js'
import { deadLetterQueueName } from '../src/shared/queue.js'
import type { HttpAnswer } from '../runtime/http/event.js'
import type { KvarcMetrics } from './metrics.js'
import { redactUrl } from './backing-services.js'

export interface OperatorOptions {
  config: Config
  metrics: Pick<KvarcMetrics, 'registry' | 'queueDepth'>
  /** The host's name in /health and as the `host` label of its metrics. */
  hostName: string
  /** Bound of each readiness / depth check. */
  checkTimeoutMs?: number
  /** Requests the host is answering besides the probe itself: what a drain is waiting for. */
  inFlight?: () => number
}

export interface CheckResult {
  ok: boolean
  ms: number
  error?: string
}

export interface QueueDepth {
  messages: number
  consumers: number
}

export interface ReadyReport {
  status: 'ready' | 'unavailable'
  host: string
  checks: {
    postgres: CheckResult
    redis: CheckResult
    rabbitmq: CheckResult & { queues?: Record<string, QueueDepth | null> }
  }
}

const OPERATOR_HEADERS = Object.freeze({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })

function jsonAnswer(statusCode: number, body: unknown): HttpAnswer {
  return { statusCode, headers: { ...OPERATOR_HEADERS }, body: JSON.stringify(body) }
}

class CheckTimeout extends Error {
  override name = 'CheckTimeout'
}

function within<T>(ms: number, what: string, work: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new CheckTimeout(`${what} did not answer within ${ms} ms`)), ms)
    work().then(
      value => { clearTimeout(timer); resolve(value) },
      (error: unknown) => { clearTimeout(timer); reject(error) },
    )
  })
}

function reason(error: unknown): string {
  return error instanceof Error ? (error.message || error.name) : String(error)
}

export class Operator {
  readonly hostName: string
  private readonly config: Config
  private readonly metrics: Pick<KvarcMetrics, 'registry' | 'queueDepth'>
  private readonly timeoutMs: number
  private readonly inFlight: () => number
  private readonly startedAt = Date.now()
  private pool: pg.Pool | undefined
  private redis: Redis | undefined
  private amqp: Promise<ChannelModel> | undefined
  private channel: Promise<Channel> | undefined
  private closed = false

  constructor(options: OperatorOptions) {
    this.config = options.config
    this.metrics = options.metrics
    this.hostName = options.hostName
    this.timeoutMs = options.checkTimeoutMs ?? 1000
    this.inFlight = options.inFlight ?? (() => 0)
  }

  /** The queues whose depth is reported: the write queues and their dead-letter queues. */
  get queues(): string[] {
    const { addQueue, delQueue } = this.config
    return [addQueue, delQueue, deadLetterQueueName(addQueue), deadLetterQueueName(delQueue)]
  }

  health(): HttpAnswer {
    return jsonAnswer(200, {
      status: 'ok',
      host: this.hostName,
      machine: hostname(),
      pid: process.pid,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      inFlight: this.inFlight(),
    })
  }

  async ready(): Promise<HttpAnswer> {
    const report = await this.readiness()
    return jsonAnswer(report.status === 'ready' ? 200 : 503, report)
  }

  async readiness(): Promise<ReadyReport> {
    const [postgres, redis, rabbitmq] = await Promise.all([
      this.check('PostgreSQL', () => this.pingPostgres()),
      this.check('Redis', () => this.pingRedis()),
      this.checkQueues(),
    ])
    const ok = postgres.ok && redis.ok && rabbitmq.ok
    return { status: ok ? 'ready' : 'unavailable', host: this.hostName, checks: { postgres, redis, rabbitmq } }
  }

  async metricsText(): Promise<HttpAnswer> {
    // Depths are read at scrape time; a queue that cannot be read has no sample rather than a stale one.
    const { queues } = await this.checkQueues()
    for (const queue of this.queues) {
      const depth = queues?.[queue]
      if (depth) this.metrics.queueDepth.set({ queue }, depth.messages)
      else this.metrics.queueDepth.remove({ queue })
    }
    const body = await this.metrics.registry.metrics()
    return { statusCode: 200, headers: { 'content-type': this.metrics.registry.contentType, 'cache-control': 'no-store' }, body }
  }

  private async check(what: string, work: () => Promise<unknown>): Promise<CheckResult> {
    const started = performance.now()
    try {
      await within(this.timeoutMs, what, work)
      return { ok: true, ms: Math.round(performance.now() - started) }
    } catch (error) {
      return { ok: false, ms: Math.round(performance.now() - started), error: reason(error) }
    }
  }

  private async pingPostgres(): Promise<void> {
    this.pool ??= createPool(this.config.databaseUrl, 1)
    await this.pool.query('SELECT 1')
  }

  private async pingRedis(): Promise<void> {
    if (!this.redis) {
      this.redis = new Redis(this.config.redisUrl, {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        connectTimeout: this.timeoutMs,
        // Reconnect in the background; a probe during an outage fails at once instead of queueing.
        retryStrategy: times => Math.min(times * 200, 2000),
        enableOfflineQueue: false,
      })
      this.redis.on('error', () => {})
    }
    if (this.redis.status === 'wait') await this.redis.connect()
    await this.redis.ping()
  }

  private async checkQueues(): Promise<CheckResult & { queues?: Record<string, QueueDepth | null> }> {
    const started = performance.now()
    try {
      const queues = await within(this.timeoutMs, `RabbitMQ at ${redactUrl(this.config.amqpUrl)}`, () => this.queueDepths())
      return { ok: true, ms: Math.round(performance.now() - started), queues }
    } catch (error) {
      return { ok: false, ms: Math.round(performance.now() - started), error: reason(error) }
    }
  }

  /** Depth of each queue; null for a queue not declared yet (checkQueue closes the channel on a miss). */
  private async queueDepths(): Promise<Record<string, QueueDepth | null>> {
    const out: Record<string, QueueDepth | null> = {}
    for (const queue of this.queues) {
      const channel = await this.openChannel()
      try {
        const { messageCount, consumerCount } = await channel.checkQueue(queue)
        out[queue] = { messages: messageCount, consumers: consumerCount }
      } catch (error) {
        if ((error as { code?: number }).code !== 404) throw error
        out[queue] = null
      }
    }
    return out
  }

  private openChannel(): Promise<Channel> {
    if (this.closed) return Promise.reject(new Error('host is shutting down'))
    if (this.channel) return this.channel
    this.amqp ??= this.openConnection()
    const opening: Promise<Channel> = this.amqp.then(async model => {
      const channel = await model.createChannel()
      channel.on('error', () => {})
      // checkQueue on a missing queue closes the channel; forget only this one, never a newer one.
      channel.on('close', () => { if (this.channel === opening) this.channel = undefined })
      return channel
    })
    this.channel = opening
    opening.catch(() => { if (this.channel === opening) this.channel = undefined })
    return opening
  }

  private openConnection(): Promise<ChannelModel> {
    const opening = connect(this.config.amqpUrl, { timeout: this.timeoutMs }).then(model => {
      model.on('error', () => {})
      model.on('close', () => {
        if (this.amqp === opening) this.amqp = undefined
        this.channel = undefined
      })
      return model
    })
    opening.catch(() => { if (this.amqp === opening) this.amqp = undefined })
    return opening
  }

  /** Closes the probe clients; idempotent, and every step runs even when one fails. */
  async close(): Promise<void> {
    this.closed = true
    const steps: Promise<unknown>[] = []
    if (this.pool) steps.push(this.pool.end())
    if (this.redis) { this.redis.disconnect(); }
    if (this.amqp) steps.push(this.amqp.then(model => model.close()))
    this.pool = undefined
    this.redis = undefined
    this.amqp = undefined
    this.channel = undefined
    await Promise.allSettled(steps)
  }
}
