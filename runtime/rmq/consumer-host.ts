/**
 * The warm consumer host: the event source mapping for every `@rabbitmq`
 * consumer of app.arc, and the schedule of every `@scheduled` function, in one
 * process. Each bundle is loaded once and invoked in-process with the event
 * Lambda gets (`aws:rmq` batches; EventBridge's Scheduled Event), under the
 * function's timeout from app.arc. Batching, ack-after-success, retry with
 * backoff and reconnects are the event source's (event-source.ts); schedules
 * are the runtime's scheduler's (runtime/scheduler.ts); this module wires
 * functions to queues and schedules, counts outcomes and serves /health,
 * /ready and /metrics on a small HTTP port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { startScheduler, type Scheduler } from '../scheduler.js'
import type { Channel } from 'amqplib'
import { RabbitEventSource } from './event-source.js'
import { loadHandler, readAppFunctions } from '../app.js'
import { Invoker } from '../invoke.js'
import { createMetrics, type Metrics } from '../metrics.js'

export interface ConsumerHostOptions {
  /** Project root holding app.arc and build/. */
  cwd: string
  amqpUrl: string
  /** The queue each pragma queue name is consumed from (tests and parallel stacks rename them); default the pragma's. */
  queues?: Readonly<Record<string, string>>
  /** Told each successful batch's result (what the function returned), e.g. to count what the app did with it. */
  observeBatch?: (consumer: string, result: unknown) => void
  /** Declares a queue before consuming it (durability, dead-lettering: the app's choice); default: it must exist. */
  declareQueue?: (channel: Channel, queue: string) => Promise<unknown>
  /** Batches in flight per consumer (each holds its own messages until applied). Default 1. */
  concurrency?: number
  /** Messages outstanding per consumer; default batch × (concurrency + 1). */
  prefetch?: number
  /** Overrides the pragma's batch size (tuning and benchmarks); app.arc stays the default. */
  batchSize?: number
  /** Only these consumers (by function name); default every one in app.arc. */
  only?: readonly string[]
  /** The `@scheduled` functions this host runs on their schedules (by name); default every one in app.arc, [] none. */
  scheduled?: readonly string[]
  /**
   * Each scheduled function runs up to this much after its occurrence (an
   * offset drawn once per host), so hosts started together do not all try at
   * once. Default 30 s.
   */
  scheduleJitterMs?: number
  /** Port for /health, /ready and /metrics; 0 picks a free one; undefined serves none. */
  metricsPort?: number
  metricsHost?: string
  /** Label of this host in metrics and logs. */
  name?: string
  /** Where batches and scheduled runs are counted, created (and named) by the caller; default createMetrics() labelled with `name`. */
  metrics?: Metrics
  logger?: Logger
  /** Backoff bounds of retries and reconnects (ms). */
  minBackoffMs?: number
  maxBackoffMs?: number
}

export interface RunningConsumer {
  name: string
  queue: string
  batch: number
  windowMs: number
  timeoutMs: number
  source: RabbitEventSource
}

export interface RunningSchedule {
  name: string
  schedule: string
  timeoutMs: number
}

export interface ConsumerHost {
  consumers: readonly RunningConsumer[]
  scheduled: readonly RunningSchedule[]
  /** Runs the scheduled functions; `runNow(name)` invokes one on demand. */
  scheduler: Scheduler
  metrics: Metrics
  /** http://host:port of /health, /ready, /metrics, when served. */
  url: string | undefined
  /** Idempotent: stops consuming and scheduling, finishes the batches and scheduled runs in flight, acknowledges the batches, disconnects. */
  close(): Promise<void>
}

/** Each function runs through the runtime's one invocation path (Lambda context, timeout, outcome). */
export { InvocationTimeoutError } from '../invoke.js'

/**
 * The function under its timeout. A timed-out invocation counts as failed (the
 * batch is retried; a scheduled run waits for its next occurrence); it may
 * still finish in the background, which is harmless because applying a batch
 * twice is a no-op and a purge takes a lock.
 */
async function invokerOf(fn: { name: string, timeoutMs: number, file: string }): Promise<Invoker> {
  return new Invoker({ name: fn.name, timeoutMs: fn.timeoutMs, handler: await loadHandler(fn.file) })
}

function countBatch(metrics: Metrics, consumer: string): void {
  metrics.batches.inc({ consumer, outcome: 'ok' })
}

/**
 * Reads app.arc, loads each consumer bundle once, connects one event source per
 * consumer. Rejects (closing what it opened) if a bundle is missing or the
 * broker is unreachable at start.
 *
 * @example const host = await startConsumerHost({ cwd: process.cwd(), amqpUrl, queues: { add_key: 'add_key' }, concurrency: 2 })
 */
export async function startConsumerHost(options: ConsumerHostOptions): Promise<ConsumerHost> {
  const app = await readAppFunctions(options.cwd)
  const functions = app.consumers.filter(c => !options.only || options.only.includes(c.name))
  if (functions.length === 0) throw new Error(`no @rabbitmq consumer to run in ${options.cwd}/app.arc${options.only ? ` (asked for ${options.only.join(', ')})` : ''}`)
  const unknown = options.scheduled?.filter(name => !app.scheduled.some(s => s.name === name)) ?? []
  if (unknown.length) throw new Error(`no @scheduled function ${unknown.join(', ')} in ${options.cwd}/app.arc`)
  const scheduledFunctions = app.scheduled.filter(s => !options.scheduled || options.scheduled.includes(s.name))
  const metrics = options.metrics ?? createMetrics({ labels: { host: options.name ?? 'consumer' } })
  const queues = options.queues ?? {}
  const log = options.logger

  const consumers: RunningConsumer[] = []
  for (const fn of functions) {
    const handler = await invokerOf(fn)
    const batch = options.batchSize ?? fn.batch
    const queue = queues[fn.queue] ?? fn.queue
    const source = new RabbitEventSource({
      url: options.amqpUrl,
      declareQueue: options.declareQueue,
      queue,
      batchSize: batch,
      windowMs: fn.windowMs,
      concurrency: options.concurrency,
      prefetch: options.prefetch,
      minBackoffMs: options.minBackoffMs,
      maxBackoffMs: options.maxBackoffMs,
      invoke: async event => {
        const end = metrics.batchLatency.startTimer({ consumer: fn.name })
        try {
          return await handler.invoke(event)
        } finally {
          end()
        }
      },
      onBatch: ({ result }) => {
        countBatch(metrics, fn.name)
        options.observeBatch?.(fn.name, result)
      },
      onError: (error, context) => {
        if (context.kind === 'invoke') metrics.batches.inc({ consumer: fn.name, outcome: 'failed' })
        log?.warn({ err: error, consumer: fn.name, ...context }, context.kind === 'invoke' ? 'consumer batch failed; retrying' : 'RabbitMQ connection lost; reconnecting')
      },
      onConnected: () => log?.info({ consumer: fn.name, queue }, 'consuming'),
    })
    consumers.push({ name: fn.name, queue, batch, windowMs: fn.windowMs, timeoutMs: fn.timeoutMs, source })
  }

  const targets = []
  for (const fn of scheduledFunctions) {
    const handler = await invokerOf(fn)
    targets.push({ name: fn.name, schedule: fn.schedule, invoke: (event: unknown) => handler.invoke(event) })
  }

  let server: Server | undefined
  let scheduler: Scheduler | undefined
  try {
    await Promise.all(consumers.map(c => c.source.start()))
    if (options.metricsPort !== undefined) server = await serveMetrics(metrics, consumers, options.metricsPort, options.metricsHost ?? '127.0.0.1')
    scheduler = startScheduler({
      functions: targets,
      jitterMs: options.scheduleJitterMs ?? 30_000,
      onResult: (name, result) => {
        metrics.scheduledRuns.inc({ function: name, outcome: 'ok' })
        log?.info({ function: name, result }, 'scheduled function ran')
      },
      onError: (error, name, event) => {
        metrics.scheduledRuns.inc({ function: name, outcome: 'failed' })
        log?.warn({ err: error, function: name, time: event?.time }, 'scheduled function failed; it runs again at its next occurrence')
      },
    })
  } catch (error) {
    await Promise.allSettled([...consumers.map(c => c.source.close()), new Promise<void>(resolve => server ? server.close(() => resolve()) : resolve())])
    throw error
  }
  const running = scheduler

  const address = server?.address() as AddressInfo | undefined
  let closing: Promise<void> | undefined
  return {
    consumers,
    scheduled: scheduledFunctions.map(({ name, schedule, timeoutMs }) => ({ name, schedule, timeoutMs })),
    scheduler: running,
    metrics,
    url: address ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : undefined,
    close() {
      closing ??= (async () => {
        // Every step runs even when another fails: a stuck metrics socket must not keep a batch unacknowledged.
        const results = await Promise.allSettled([
          ...consumers.map(c => c.source.close()),
          running.close(),
          new Promise<void>(resolve => {
            if (!server) return resolve()
            server.close(() => resolve())
            server.closeAllConnections()
          }),
        ])
        const failed = results.filter(r => r.status === 'rejected')
        if (failed.length) throw new AggregateError(failed.map(r => (r as PromiseRejectedResult).reason), 'consumer host close failed')
      })()
      return closing
    },
  }
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

function serveMetrics(metrics: Metrics, consumers: readonly RunningConsumer[], port: number, host: string): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, { detail: 'only GET is served here' })
    if (path === '/health') return answer(res, 200, { status: 'ok' })
    if (path === '/ready') {
      const down = consumers.filter(c => !c.source.connected).map(c => c.queue)
      const held = Object.fromEntries(consumers.map(c => [c.queue, c.source.messagesHeld]))
      const prefetch = Object.fromEntries(consumers.map(c => [c.queue, c.source.prefetch]))
      return down.length === 0
        ? answer(res, 200, { status: 'ready', consuming: consumers.map(c => c.queue), held, prefetch })
        : answer(res, 503, { detail: `not consuming ${down.join(', ')}: reconnecting to RabbitMQ` })
    }
    if (path === '/metrics') {
      for (const c of consumers) metrics.messagesHeld.set({ consumer: c.name }, c.source.messagesHeld)
      metrics.registry.metrics().then(text => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType })
        res.end(text)
      }, error => answer(res, 500, { detail: `metrics failed: ${(error as Error).message}` }))
      return
    }
    answer(res, 404, { detail: `no route ${path}: this is a consumer host (try /health, /ready, /metrics)` })
  })
  server.keepAliveTimeout = 65_000
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve(server)
    })
  })
}
