/**
 * The runtime's HTTP gateway: one node:http server that invokes an app's HTTP
 * functions in-process, each bundle loaded once at start (a warm Lambda
 * container that never goes cold), with the API Gateway v2 event sandbox
 * builds (event.ts).
 *
 * What API Gateway and Lambda would do around a function, the gateway does
 * too: routing with 404 / 405 and the greedy root route (routes.ts), the body
 * limit → 413 decided from content-length before any of the body is read
 * (request.ts), a throwing function → 500 and one past its app.arc timeout →
 * 504, all JSON with a `detail` (answers.ts, through runtime/invoke.ts), and a
 * graceful close that drains in-flight requests (server.ts). One request's way
 * through them is handle-request.ts.
 *
 * It knows no app: the caller hands in the body limit, the logger, the metrics
 * (named by the caller), the endpoints it answers itself (health, metrics) and
 * what to observe of each route's answers.
 */
import { existsSync } from 'node:fs'
import type { Server } from 'node:http'
import { loadHandler, readAppFunctions, type Handler } from '../app.js'
import { Invoker } from '../invoke.js'
import type { HttpMetrics } from '../metrics.js'
import type { GatewayLogger } from './answers.js'
import { routeResource } from './event.js'
import { RequestHandler } from './handle-request.js'
import { Meters } from './meters.js'
import { RouteTable, type Endpoint, type Route, type RouteObserver } from './routes.js'
import { GatewayServer } from './server.js'
import { createStaticFiles, type StaticFiles } from './static-files.js'

export { MAX_HEADER_BYTES } from './request.js'
export type { Endpoint, RouteObserver } from './routes.js'
export type { GatewayLogger } from './answers.js'

/** A function the gateway serves: from app.arc (a bundle file) or, in tests, a handler given directly. */
export interface HostFunction {
  name: string
  /** GET, PUT, ... (any case). */
  method: string
  /** The app.arc path: `/api`, `/items/:id`, `/files/*`. */
  path: string
  timeoutMs: number
  file?: string
  handler?: Handler
}

export interface GatewayOptions {
  /** Project folder with app.arc and build/; default process.cwd(). */
  cwd?: string
  /** Functions to serve instead of app.arc's (tests). */
  functions?: HostFunction[]
  /** 0 picks a free port. */
  port: number
  /** Default 127.0.0.1. */
  host?: string
  /** Serve the @static folder (public/) for GET requests no function matches: when no proxy stands in front. */
  serveStatic?: boolean
  /** Default: app.arc's @static folder. */
  staticDir?: string
  /** Headers every static file is served with (the app's security policy). */
  staticHeaders?: Readonly<Record<string, string>>
  /** Largest request body a function is given; larger → 413. */
  maxBodyBytes: number
  /** Request line and headers together; default MAX_HEADER_BYTES. */
  maxHeaderBytes?: number
  /** Idle keep-alive sockets are closed after this long; must exceed the proxy's upstream keep-alive (server.ts). */
  keepAliveTimeoutMs?: number
  /** How long close() waits for in-flight requests before cutting them off. */
  shutdownTimeoutMs?: number
  logger: GatewayLogger
  /** Where requests are counted and timed (created and named by the caller). */
  metrics: HttpMetrics
  /** Paths the gateway answers itself for GET and HEAD, before any function (health, readiness, metrics). */
  endpoints?: ReadonlyMap<string, Endpoint>
  /** What to observe of a route's answers, by route key (`GET /api`); asked once per route at start. */
  observerFor?: (routeKey: string) => RouteObserver | undefined
}

export interface HttpGateway {
  readonly port: number
  readonly url: string
  readonly server: Server
  /** Requests being answered right now. */
  inFlight(): number
  /** Idempotent: every call returns the same promise; it never rejects. */
  close(): Promise<void>
}

/**
 * Loads every function's bundle, then listens. Rejects when a bundle is
 * missing, two functions serve one route, or a function sits on an endpoint.
 *
 * @example const gateway = await startHttpGateway({ port: 8080, maxBodyBytes: 1 << 20, logger, metrics: createMetrics({ prefix: 'myapp_' }) })
 */
export async function startHttpGateway(options: GatewayOptions): Promise<HttpGateway> {
  const { logger, metrics } = options
  let functions = options.functions
  let staticDir = options.staticDir
  if (!functions || (options.serveStatic && !staticDir)) {
    const app = await readAppFunctions(options.cwd ?? process.cwd())
    functions ??= app.http
    staticDir ??= app.staticDir
  }

  // Every bundle is imported before the first request: a missing build fails the start, not a request.
  const loaded = await Promise.all(functions.map(async fn => ({
    fn,
    handler: fn.handler ?? await loadHandler(fn.file ?? ''),
  })))

  const server = new GatewayServer(options)
  const meters = new Meters(metrics, () => server.active)
  const routes = new RouteTable(loaded.map(({ fn, handler }) => {
    const method = fn.method.toUpperCase()
    const routeKey = `${method} ${routeResource(fn.path)}`
    const route: Route = {
      info: { routeKey, method },
      invoker: new Invoker({ name: fn.name, timeoutMs: fn.timeoutMs, handler }),
      meter: meters.forRoute(routeKey),
      observe: options.observerFor?.(routeKey),
    }
    return { path: fn.path, route }
  }), options.endpoints)

  let staticFiles: StaticFiles | undefined
  if (options.serveStatic) {
    if (staticDir && existsSync(staticDir)) staticFiles = createStaticFiles(staticDir, options.staticHeaders)
    else logger.warn({ staticDir }, 'static folder not found: serving the API only')
  }

  const handler = new RequestHandler({ routes, meters, maxBodyBytes: options.maxBodyBytes, staticFiles, logger, lifecycle: server })
  const address = await server.listen(options.port, options.host ?? '127.0.0.1', handler)
  return {
    port: address.port,
    url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    server: server.server,
    inFlight: () => server.active,
    close: () => server.close(),
  }
}
