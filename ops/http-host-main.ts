/**
 * One warm HTTP host process: `node build/ops/http-host-main.mjs` (its bundle), and
 * its composition root, startHttpHost: the runtime's app-agnostic gateway
 * (runtime/http/gateway.ts) given kvarc's config, body limit, logger, metric
 * names, cache and publish observations and operator endpoints.
 *
 *   PORT                 listen port (default: config's PORT, 8080)
 *   HOST                 listen address (default 127.0.0.1)
 *   KVARC_HOST_NAME      this host's label in /health and /metrics
 *   KVARC_SERVE_STATIC=1 also serve public/ (when no nginx stands in front)
 *   KVARC_SHUTDOWN_TIMEOUT_MS  how long SIGTERM waits for in-flight requests (default 20000)
 *
 * Prints one line once listening; SIGTERM / SIGINT drain in-flight requests and
 * exit 0. A missing build or a bad setting exits 1 with the reason.
 */
import type { Server } from 'node:http'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Logger } from 'pino'
import { loadConfig, type Config } from '../src/shared/config.js'
import { MAX_BODY_BYTES } from '../src/shared/limits.js'
import { getLogger } from '../src/shared/log.js'
import { SECURITY_HEADERS } from '../src/shared/security-headers.js'
import { startHttpGateway, type Endpoint, type HostFunction, type RouteObserver } from '../runtime/http/gateway.js'
import { createKvarcMetrics, type KvarcMetrics } from './metrics.js'
import { Operator } from './operator.js'

export type { HostFunction } from '../runtime/http/gateway.js'

export interface HttpHostOptions {
  /** Project folder with app.arc and build/; default process.cwd(). */
  cwd?: string
  /** Functions to serve instead of app.arc's (tests). */
  functions?: HostFunction[]
  /** Default: loadConfig(process.env). */
  config?: Config
  /** Default: config.port. 0 picks a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** Label in /health and metrics; default `host-<port>`. */
  hostName?: string
  /** Serve the @static folder (public/) for GET requests no function matches: when nginx is absent. */
  serveStatic?: boolean
  /** Default: app.arc's @static folder. */
  staticDir?: string
  /** Default MAX_BODY_BYTES (src/shared/limits.ts). */
  maxBodyBytes?: number
  /** Request line and headers together; default the gateway's MAX_HEADER_BYTES. */
  maxHeaderBytes?: number
  /** Idle keep-alive sockets are closed after this long; default 65 s, above nginx's upstream keepalive_timeout (60 s). */
  keepAliveTimeoutMs?: number
  /** How long close() waits for in-flight requests before cutting them off. */
  shutdownTimeoutMs?: number
  /** Bound of each /ready and /metrics check. */
  checkTimeoutMs?: number
  logger?: Logger
}

export interface HttpHost {
  readonly port: number
  readonly url: string
  readonly hostName: string
  readonly server: Server
  readonly metrics: KvarcMetrics
  /** Requests being answered right now. */
  inFlight(): number
  /** Idempotent: drains the gateway, then closes the operator's clients; every call returns the same promise. */
  close(): Promise<void>
}

/**
 * Cache and publish metrics, read from the answers of the contract's functions
 * (design.md): GET /api says where a 200 or a 404 came from in `x-kvarc-source`
 * (never scanning a 1 MiB body); PUT and DELETE /api answer 200 once the broker
 * confirmed the publish and 503 when it could not.
 */
function observerFor(routeKey: string, metrics: KvarcMetrics, config: Config): RouteObserver | undefined {
  if (routeKey === 'GET /api') {
    const hit = metrics.cacheReads.labels('redis')
    const miss = metrics.cacheReads.labels('postgres')
    return (_status, headers) => {
      const source = headers['x-kvarc-source']
      if (source === 'redis') hit.inc()
      else if (source === 'postgres') miss.inc()
    }
  }
  const queue = routeKey === 'PUT /api' ? config.addQueue : routeKey === 'DELETE /api' ? config.delQueue : undefined
  if (!queue) return undefined
  const confirmed = metrics.publishes.labels(queue, 'confirmed')
  const failed = metrics.publishes.labels(queue, 'failed')
  return status => {
    if (status === 200) confirmed.inc()
    else if (status === 503) failed.inc()
  }
}

/**
 * A kvarc HTTP host: the runtime's gateway serving app.arc's functions with
 * kvarc's body limit, logger, metrics (`kvarc_*`, cache reads and publishes
 * observed), and the operator endpoints /health, /ready and /metrics.
 *
 * @example const host = await startHttpHost({ config, port: 0, hostName: 'http-1' })
 */
export async function startHttpHost(options: HttpHostOptions = {}): Promise<HttpHost> {
  const config = options.config ?? loadConfig(process.env)
  const logger = options.logger ?? getLogger(config.logLevel)
  // The host label is set once the port (and so the default name) is known.
  const metrics = createKvarcMetrics()
  // Made once the gateway listens (it needs the host's name); no request is answered before.
  let operator: Operator | undefined
  const endpoints = new Map<string, Endpoint>([
    ['/health', () => operator!.health()],
    ['/ready', () => operator!.ready()],
    ['/metrics', () => operator!.metricsText()],
  ])
  const gateway = await startHttpGateway({
    cwd: options.cwd,
    functions: options.functions,
    port: options.port ?? config.port,
    host: options.host,
    serveStatic: options.serveStatic,
    staticDir: options.staticDir,
    staticHeaders: SECURITY_HEADERS,
    maxBodyBytes: options.maxBodyBytes ?? MAX_BODY_BYTES,
    maxHeaderBytes: options.maxHeaderBytes,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    shutdownTimeoutMs: options.shutdownTimeoutMs,
    logger,
    metrics,
    endpoints,
    observerFor: routeKey => observerFor(routeKey, metrics, config),
  })
  const hostName = options.hostName ?? `host-${gateway.port}`
  metrics.registry.setDefaultLabels({ host: hostName })
  const running = new Operator({ config, metrics, hostName, checkTimeoutMs: options.checkTimeoutMs, inFlight: () => gateway.inFlight() - 1 })
  operator = running

  let closed: Promise<void> | undefined
  return {
    port: gateway.port,
    url: gateway.url,
    hostName,
    server: gateway.server,
    metrics,
    inFlight: () => gateway.inFlight(),
    close() {
      // The operator's clients serve /ready while the gateway drains; they close after it.
      closed ??= gateway.close().then(() => running.close())
      return closed
    },
  }
}

/** Reads this entry point's own settings; PORT and the services come from the shared config. */
function hostSettings(env: NodeJS.ProcessEnv) {
  const timeout = env.KVARC_SHUTDOWN_TIMEOUT_MS
  const shutdownTimeoutMs = timeout === undefined || timeout === '' ? 20_000 : Number(timeout)
  if (!Number.isInteger(shutdownTimeoutMs) || shutdownTimeoutMs < 0) {
    throw new Error(`KVARC_SHUTDOWN_TIMEOUT_MS must be a whole number of milliseconds, got ${JSON.stringify(timeout)}`)
  }
  return {
    host: env.HOST || '127.0.0.1',
    hostName: env.KVARC_HOST_NAME || undefined,
    serveStatic: env.KVARC_SERVE_STATIC === '1' || env.KVARC_SERVE_STATIC === 'true',
    shutdownTimeoutMs,
  }
}

export async function main(): Promise<void> {
  let config
  let settings
  try {
    config = loadConfig(process.env)
    settings = hostSettings(process.env)
  } catch (error) {
    console.error(`kvarc http host: ${(error as Error).message}`)
    process.exit(1)
  }
  const logger = getLogger(config.logLevel)

  // A function's stray rejected promise must not take down every other request in this process.
  process.on('unhandledRejection', reason => logger.error({ err: reason }, 'unhandled promise rejection in a function'))

  let host
  try {
    host = await startHttpHost({ config, port: config.port, ...settings, logger })
  } catch (error) {
    const message = (error as Error).message
    console.error(`kvarc http host failed to start: ${message}`)
    if (/bundle .* is missing/.test(message)) console.error('  build the functions first: npm run build')
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') console.error(`  port ${config.port} is taken: set PORT to a free one`)
    process.exit(1)
  }
  console.log(`kvarc http host ${host.hostName} listening on ${host.url}${settings.serveStatic ? ' (serving public/)' : ''}`)

  let draining = false
  const stop = (signal: NodeJS.Signals) => {
    if (draining) {
      // A second Ctrl-C means "now"; a repeated SIGTERM (a supervisor, a process group) lets the drain finish.
      if (signal !== 'SIGINT') return
      console.error(`kvarc http host ${host.hostName}: SIGINT again, exiting without draining`)
      process.exit(1)
    }
    draining = true
    host.close().then(
      () => process.exit(0),
      (error: unknown) => { logger.error({ err: error }, 'shutdown failed'); process.exit(1) },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

const entry = process.argv[1]
if (entry && import.meta.url === pathToFileURL(resolve(entry)).href) {
  void main()
}
