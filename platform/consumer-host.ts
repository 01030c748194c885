/**
 * The warm consumer host: the event source mapping for every `@rabbitmq`
 * consumer of app.arc, in one process. Each consumer's bundle is loaded once
 * and invoked in-process with the `aws:rmq` event Lambda builds, under the
 * function's timeout from app.arc. Batching, ack-after-success, retry with
 * backoff and reconnects are the event source's (event-source.ts); this module
 * wires functions to queues, counts outcomes and serves /health, /ready and
 * /metrics on a small HTTP port.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { Config } from '../src/shared/config.js'
import { RabbitEventSource } from './event-source.js'
import { loadHandler, readAppFunctions, type ConsumerFunction, type Handler } from './functions.js'
import { createMetrics, type Metrics } from './metrics.js'

export interface ConsumerHostOptions {
  /** Project root holding app.arc and build/. */
  cwd: string
  config: Config
  /** Batches in flight per consumer (each holds its own messages until applied). Default 1. */
  concurrency?: number
  /** Messages outstanding per consumer; default batch × (concurrency + 1). */
  prefetch?: number
  /** Overrides the pragma's batch size (tuning and benchmarks); app.arc stays the default. */
  batchSize?: number
  /** Only these consumers (by function name); default every one in app.arc. */
  only?: readonly string[]
  /** Port for /health, /ready and /metrics; 0 picks a free one; undefined serves none. */
  metricsPort?: number
  metricsHost?: string
  /** Label of this host in metrics and logs. */
  name?: string
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

export interface ConsumerHost {
  consumers: readonly RunningConsumer[]
  metrics: Metrics
  /** http://host:port of /health, /ready, /metrics, when served. */
  url: string | undefined
  /** Idempotent: stops consuming, finishes the batches in flight, acknowledges them, disconnects. */
  close(): Promise<void>
}

export class InvocationTimeoutError extends Error {
  override name = 'InvocationTimeoutError'
}

/** A minimal Lambda context: what a handler may read of its invocation. */
function lambdaContext(fn: ConsumerFunction, deadline: number, id: number) {
  return {
    functionName: fn.name,
    functionVersion: '$LATEST',
    awsRequestId: `kvarc-${fn.name}-${id}`,
    memoryLimitInMB: '512',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  }
}

/**
 * The function under its timeout. A timed-out invocation counts as failed (the
 * batch is retried); it may still finish in the background, which is harmless
 * because applying a batch twice is a no-op.
 */
function withTimeout(fn: ConsumerFunction, handler: Handler): (event: unknown) => Promise<unknown> {
  let invocations = 0
  return event => {
    const deadline = Date.now() + fn.timeoutMs
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new InvocationTimeoutError(`${fn.name} did not finish within its ${fn.timeoutMs} ms timeout`)), fn.timeoutMs)
    })
    return Promise.race([handler(event, lambdaContext(fn, deadline, ++invocations)), timeout]).finally(() => clearTimeout(timer))
  }
}

interface BatchCounts { received?: number, applied?: number, skipped?: number, deadLettered?: number, cacheDeferred?: number }

function countBatch(metrics: Metrics, consumer: string, result: unknown): void {
  metrics.batches.inc({ consumer, outcome: 'ok' })
  const r = (result ?? {}) as BatchCounts
  if (r.applied) metrics.writes.inc({ consumer, outcome: 'applied' }, r.applied)
  if (r.skipped) metrics.writes.inc({ consumer, outcome: 'skipped' }, r.skipped)
  if (r.deadLettered) metrics.writes.inc({ consumer, outcome: 'dead_lettered' }, r.deadLettered)
  if (r.cacheDeferred) metrics.writes.inc({ consumer, outcome: 'cache_deferred' }, r.cacheDeferred)
}

/**
 * Reads app.arc, loads each consumer bundle once, connects one event source per
 * consumer. Rejects (closing what it opened) if a bundle is missing or the
 * broker is unreachable at start.
 *
 * @example const host = await startConsumerHost({ cwd: process.cwd(), config: getConfig(), concurrency: 2 })
 */
export async function startConsumerHost(options: ConsumerHostOptions): Promise<ConsumerHost> {
  const { config } = options
  const app = await readAppFunctions(options.cwd)
  const functions = app.consumers.filter(c => !options.only || options.only.includes(c.name))
  if (functions.length === 0) throw new Error(`no @rabbitmq consumer to run in ${options.cwd}/app.arc${options.only ? ` (asked for ${options.only.join(', ')})` : ''}`)
  const metrics = createMetrics({ host: options.name ?? 'consumer' })
  // The pragma names the production queues; tests and parallel stacks rename them through config.
  const queues: Record<string, string> = { add_key: config.addQueue, del_key: config.delQueue }
  const log = options.logger

  const consumers: RunningConsumer[] = []
  for (const fn of functions) {
    const handler = withTimeout(fn, await loadHandler(fn.file))
    const batch = options.batchSize ?? fn.batch
    const queue = queues[fn.queue] ?? fn.queue
    const source = new RabbitEventSource({
      url: config.amqpUrl,
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
          return await handler(event)
        } finally {
          end()
        }
      },
      onBatch: ({ result }) => countBatch(metrics, fn.name, result),
      onError: (error, context) => {
        if (context.kind === 'invoke') metrics.batches.inc({ consumer: fn.name, outcome: 'failed' })
        log?.warn({ err: error, consumer: fn.name, ...context }, context.kind === 'invoke' ? 'consumer batch failed; retrying' : 'RabbitMQ connection lost; reconnecting')
      },
      onConnected: () => log?.info({ consumer: fn.name, queue }, 'consuming'),
    })
    consumers.push({ name: fn.name, queue, batch, windowMs: fn.windowMs, timeoutMs: fn.timeoutMs, source })
  }

  let server: Server | undefined
  try {
    await Promise.all(consumers.map(c => c.source.start()))
    if (options.metricsPort !== undefined) server = await serveMetrics(metrics, consumers, options.metricsPort, options.metricsHost ?? '127.0.0.1')
  } catch (error) {
    await Promise.allSettled(consumers.map(c => c.source.close()))
    throw error
  }

  const address = server?.address() as AddressInfo | undefined
  let closing: Promise<void> | undefined
  return {
    consumers,
    metrics,
    url: address ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : undefined,
    close() {
      closing ??= (async () => {
        // Every step runs even when another fails: a stuck metrics socket must not keep a batch unacknowledged.
        const results = await Promise.allSettled([
          ...consumers.map(c => c.source.close()),
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
      return down.length === 0
        ? answer(res, 200, { status: 'ready', consuming: consumers.map(c => c.queue), held })
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
