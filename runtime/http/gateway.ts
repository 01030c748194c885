/**
 * The warm platform's HTTP host: one node:http server that invokes the app's
 * HTTP functions in-process, each bundle loaded once at start (a warm Lambda
 * container that never goes cold), with the API Gateway v2 event sandbox
 * builds (http-event.ts).
 *
 * What API Gateway and Lambda would do around a function, the host does too:
 * a request no route takes goes to the app's greedy root route (`any /*`) when
 * app.arc declares one, as API Gateway sends it to `ANY /{proxy+}` (static
 * files are still served by the host first, when it serves them); without one,
 * unknown route → 404, wrong method → 405. Body over the limit → 413 (decided
 * from content-length before any of the body is read), a throwing function →
 * 500, a function past its app.arc timeout → 504; all JSON with a `detail`.
 * Keep-alive outlives nginx's upstream keep-alive, so nginx always closes
 * first and never sends on a socket the host is closing. `close()` stops
 * accepting, lets in-flight requests finish (up to a deadline), closes idle
 * keep-alive sockets and the operator clients.
 *
 * Hot path: a Map lookup per request, no logging, no client creation, metric
 * children resolved once per route and status, one write per response.
 */
import { randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Logger } from 'pino'
import { Gauge } from 'prom-client'
import { loadConfig, type Config } from '../../src/shared/config.js'
import { MAX_BODY_BYTES } from '../../src/shared/limits.js'
import { getLogger } from '../../src/shared/log.js'
import { loadHandler, readAppFunctions, type Handler } from '../app.js'
import {
  buildHttpEvent, errorAnswer, resultToAnswer, routeResource, splitUrl, writeAnswer,
  InvalidResultError, type HttpAnswer, type RouteInfo, type SplitUrl,
} from './event.js'
import { createMetrics, type Metrics } from '../metrics.js'
import { Operator } from '../../ops/operator.js'
import { createStaticFiles, type StaticFiles } from './static-files.js'

/** A function the host serves: from app.arc (a bundle file) or, in tests, a handler given directly. */
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
  /** Request line and headers together; default MAX_HEADER_BYTES. */
  maxHeaderBytes?: number
  /**
   * Idle keep-alive sockets are closed after this long. Must exceed nginx's
   * upstream `keepalive_timeout` (60 s by default), so the proxy, not the host,
   * closes an idle connection and never races a request into a closing socket.
   */
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
  readonly metrics: Metrics
  /** Requests being answered right now. */
  inFlight(): number
  /** Idempotent: every call returns the same promise. */
  close(): Promise<void>
}

interface Route {
  info: RouteInfo
  name: string
  handler: Handler
  /** Declares (event, context, callback): Lambda's callback style. */
  takesCallback: boolean
  deadlines: Deadlines
  timeoutMs: number
  /** Counter children by status, made on first use, so a request does no label lookup of its own. */
  counts: Map<number, { inc(): void }>
  latency: { observe(seconds: number): void }
  /** Derives cache / publish metrics from a 2xx/5xx answer without the function's help. */
  observe?: (status: number, headers: Record<string, string | string[]>) => void
}

interface PatternRoute {
  method: string
  pattern: RegExp
  names: string[]
  catchall: boolean
  route: Route
}

type OperatorEndpoint = () => HttpAnswer | Promise<HttpAnswer>

/**
 * Per-request code avoids creating closures: the hosts run under tsx, whose
 * esbuild transform (keepNames) wraps every named closure in a defineProperty
 * call each time it is created, and closures are garbage besides; together with
 * fewer promise hops this took ~6 us of CPU off each request. Promise settlers are captured
 * by module-level executors, listeners are module-level functions that find
 * their state on the object they listen to.
 */
let capturedResolve: ((value: never) => void) | undefined
let capturedReject: ((error: unknown) => void) | undefined
function captureSettlers(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  capturedResolve = resolve
  capturedReject = reject
}
/** A promise with its settlers, made without a closure. */
function deferred<T>(): { promise: Promise<T>, resolve: (value: T) => void, reject: (error: unknown) => void } {
  const promise = new Promise<T>(captureSettlers as (resolve: (value: T) => void, reject: (error: unknown) => void) => void)
  return { promise, resolve: capturedResolve as (value: T) => void, reject: capturedReject! }
}

/** A Lambda context: the request id is made only if the function asks for it. */
class LambdaContext {
  readonly functionVersion = '$LATEST'
  readonly invokedFunctionArn = 'kvarc-warm-host'
  callbackWaitsForEmptyEventLoop = true
  private requestId: string | undefined
  constructor(readonly functionName: string, private readonly deadline: number) {}
  get awsRequestId(): string {
    this.requestId ??= randomUUID()
    return this.requestId
  }
  getRemainingTimeInMillis(): number {
    return Math.max(0, this.deadline - Date.now())
  }
}

/**
 * One invocation of a function, settled once: by the function (its promise or
 * Lambda's callback) or by its timeout. A function past its timeout keeps
 * running, but whatever it answers later is dropped.
 */
class Invocation {
  settled = false
  timedOut = false
  failed = false
  value: unknown
  error: unknown
  readonly done: Promise<void>
  /** performance.now() past which the function has timed out. */
  readonly deadline: number
  /** Neighbours in its route's deadline list, while pending. */
  prev: Invocation | undefined
  next: Invocation | undefined
  private readonly resolve: (value: void) => void

  constructor(private readonly deadlines: Deadlines) {
    const { promise, resolve } = deferred<void>()
    this.done = promise
    this.resolve = resolve
    this.deadline = performance.now() + deadlines.timeoutMs
    deadlines.add(this)
  }

  succeed(value: unknown): void {
    if (this.settled) return
    this.settled = true
    this.value = value
    this.deadlines.remove(this)
    this.resolve()
  }

  fail(error: unknown): void {
    if (this.settled) return
    this.settled = true
    this.failed = true
    this.error = error
    this.deadlines.remove(this)
    this.resolve()
  }

  /** Called by the deadline list, which has already unlinked it. */
  expire(): void {
    if (this.settled) return
    this.settled = true
    this.timedOut = true
    this.resolve()
  }
}

/**
 * The pending invocations of one route, oldest first. They share one timeout,
 * so deadlines come in call order and one timer, armed for the oldest, serves
 * them all: a request costs two pointer writes instead of a node Timeout
 * (allocated, inserted in a timer list, removed again).
 */
class Deadlines {
  private head: Invocation | undefined
  private tail: Invocation | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(readonly timeoutMs: number) {}

  add(invocation: Invocation): void {
    invocation.prev = this.tail
    if (this.tail) this.tail.next = invocation
    else this.head = invocation
    this.tail = invocation
    if (!this.timer) this.arm(this.timeoutMs)
  }

  remove(invocation: Invocation): void {
    const { prev, next } = invocation
    if (prev) prev.next = next
    else if (this.head === invocation) this.head = next
    else return // not linked
    if (next) next.prev = prev
    else this.tail = prev
    invocation.prev = invocation.next = undefined
  }

  /** Expires every invocation past its deadline, then waits for the next oldest. */
  expireDue(): void {
    this.timer = undefined
    const now = performance.now()
    // Timers may fire a fraction of a millisecond early by performance.now()'s clock.
    while (this.head && this.head.deadline <= now + 1) {
      const due = this.head
      this.remove(due)
      due.expire()
    }
    if (this.head) this.arm(this.head.deadline - now)
  }

  private arm(ms: number): void {
    this.timer = setTimeout(expireDue, Math.max(1, Math.ceil(ms)), this)
    // Pending work holds the server open anyway; an idle list must not hold the process.
    this.timer.unref()
  }
}

function expireDue(deadlines: Deadlines): void {
  deadlines.expireDue()
}

async function awaitReturned(invocation: Invocation, returned: PromiseLike<unknown>): Promise<void> {
  try {
    invocation.succeed(await returned)
  } catch (error) {
    invocation.fail(error)
  }
}

/**
 * Runs a handler the way Lambda's Node runtime does: a returned promise or, for
 * a handler that declares it, the callback settles it; a synchronous throw is a
 * failure.
 */
function invoke(handler: Handler, takesCallback: boolean, event: unknown, context: LambdaContext, deadlines: Deadlines): Invocation {
  const invocation = new Invocation(deadlines)
  try {
    const returned = takesCallback
      ? (handler as (e: unknown, c: unknown, cb: (error: unknown, value?: unknown) => void) => unknown)(event, context, (error, value) => {
          if (error) invocation.fail(error)
          else invocation.succeed(value)
        })
      : handler(event, context)
    if (returned !== null && typeof returned === 'object' && typeof (returned as PromiseLike<unknown>).then === 'function') {
      void awaitReturned(invocation, returned as PromiseLike<unknown>)
    } else if (!takesCallback) {
      invocation.succeed(returned)
    }
  } catch (error) {
    invocation.fail(error)
  }
  return invocation
}

const TOO_LARGE = Symbol('too large')
const BODY = Symbol('kvarc body')

interface BodyState {
  chunks: Buffer[]
  size: number
  limit: number
  expected: number
  done: boolean
  resolve: (value: Buffer | typeof TOO_LARGE) => void
  reject: (error: unknown) => void
}

type BodyRequest = IncomingMessage & { [BODY]?: BodyState }

function onBodyData(this: BodyRequest, chunk: Buffer): void {
  const state = this[BODY]!
  if (state.done) return
  state.size += chunk.length
  if (state.size > state.limit) {
    // Stop holding the body; what still arrives is read and dropped by node.
    state.done = true
    state.chunks.length = 0
    state.resolve(TOO_LARGE)
    return
  }
  state.chunks.push(chunk)
}

function onBodyEnd(this: BodyRequest): void {
  const state = this[BODY]!
  if (state.done) return
  state.done = true
  state.resolve(state.chunks.length === 1 ? state.chunks[0]! : Buffer.concat(state.chunks, state.size))
}

function onBodyError(this: BodyRequest, error: unknown): void {
  const state = this[BODY]!
  if (state.done) return
  state.done = true
  state.reject(error)
}

function onBodyClose(this: BodyRequest): void {
  const state = this[BODY]!
  if (state.done) return
  state.done = true
  state.reject(new Error(`request closed after ${state.size} of ${state.expected} body bytes`))
}

/** Reads a request body, stopping (and discarding the rest) once it passes `limit`. */
function readBody(req: BodyRequest, limit: number, expected: number): Promise<Buffer | typeof TOO_LARGE> {
  const { promise, resolve, reject } = deferred<Buffer | typeof TOO_LARGE>()
  req[BODY] = { chunks: [], size: 0, limit, expected, done: false, resolve, reject }
  req.on('data', onBodyData)
  req.on('end', onBodyEnd)
  req.on('error', onBodyError)
  req.on('close', onBodyClose)
  return promise
}

/**
 * 64 KiB of request line and headers (node's default is 16 KiB): a valid request
 * always fits (a key of 2,048 bytes is at most 6,144 characters percent-encoded,
 * and nginx passes request lines of up to 16 KiB), so an over-long key reaches
 * its function and gets the function's 422 rather than a bare 431. The same
 * figure is given to `arc sandbox` (package.json, test/sandbox/sandbox.ts).
 */
export const MAX_HEADER_BYTES = 64 * 1024

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}

/** Cache and publish metrics, read from the answers of the contract's functions (design.md). */
function observerFor(routeKey: string, metrics: Metrics, config: Config): Route['observe'] {
  if (routeKey === 'GET /api') {
    const hit = metrics.cacheReads.labels('redis')
    const miss = metrics.cacheReads.labels('postgres')
    // The function says where a 200 or a 404 came from in a header (never scanning a 1 MiB body).
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

export async function startHttpHost(options: HttpHostOptions = {}): Promise<HttpHost> {
  const cwd = options.cwd ?? process.cwd()
  const config = options.config ?? loadConfig(process.env)
  const logger = options.logger ?? getLogger(config.logLevel)
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES

  let functions = options.functions
  let staticDir = options.staticDir
  if (!functions || (options.serveStatic && !staticDir)) {
    const app = await readAppFunctions(cwd)
    functions ??= app.http
    staticDir ??= app.staticDir
  }

  // Every bundle is imported before the first request: a missing build fails the start, not a request.
  const loaded = await Promise.all(functions.map(async fn => ({
    fn,
    handler: fn.handler ?? await loadHandler(fn.file ?? ''),
  })))

  const listenPort = options.port ?? config.port
  // The host label is set once the port (and so the default name) is known.
  const metrics = createMetrics()
  /** Answers the host gives itself (404, 405, static files, operator endpoints), by route label. */
  const ownAnswers = new Map<string, { counts: Map<number, { inc(): void }>, latency: { observe(seconds: number): void } }>()

  function makeRoute(fn: HostFunction, handler: Handler): Route {
    const method = fn.method.toUpperCase()
    const routeKey = `${method} ${routeResource(fn.path)}`
    return {
      info: { routeKey, method },
      name: fn.name,
      handler,
      takesCallback: handler.length >= 3,
      deadlines: new Deadlines(fn.timeoutMs),
      timeoutMs: fn.timeoutMs,
      counts: new Map(),
      latency: metrics.latency.labels(routeKey),
      observe: observerFor(routeKey, metrics, config),
    }
  }

  const exact = new Map<string, Map<string, Route>>()
  const patterns: PatternRoute[] = []
  /** The greedy root routes (`any /*`, `get /*`) by method: where requests no other route takes go. */
  const fallbacks = new Map<string, Route>()
  for (const { fn, handler } of loaded) {
    const route = makeRoute(fn, handler)
    if (fn.path === '/*') {
      if (fallbacks.has(route.info.method)) throw new Error(`two functions serve ${route.info.routeKey}`)
      fallbacks.set(route.info.method, route)
      continue
    }
    if (fn.path.includes(':') || fn.path.endsWith('/*')) {
      const names: string[] = []
      const catchall = fn.path.endsWith('/*')
      const base = catchall ? fn.path.slice(0, -2) : fn.path
      const source = base.split('/').map(part => {
        if (!part.startsWith(':')) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        names.push(part.slice(1))
        return '([^/]+)'
      }).join('/')
      patterns.push({ method: route.info.method, pattern: new RegExp(`^${source}${catchall ? '(?:/(.*))?' : ''}$`), names, catchall, route })
      continue
    }
    let methods = exact.get(fn.path)
    if (!methods) exact.set(fn.path, methods = new Map())
    if (methods.has(route.info.method)) throw new Error(`two functions serve ${route.info.routeKey}`)
    methods.set(route.info.method, route)
  }

  let operator: Operator | undefined
  const operatorEndpoints = new Map<string, OperatorEndpoint>([
    ['/health', () => operator!.health()],
    ['/ready', () => operator!.ready()],
    ['/metrics', () => operator!.metricsText()],
  ])
  // Probes must reach the host whatever the app declares; a function there would be silently unreachable.
  for (const path of operatorEndpoints.keys()) {
    if (exact.has(path)) throw new Error(`app.arc declares a function on ${path}, which every host answers itself (health, readiness, metrics): move the function to another path`)
  }

  let staticFiles: StaticFiles | undefined
  if (options.serveStatic) {
    if (staticDir && existsSync(staticDir)) staticFiles = createStaticFiles(staticDir)
    else logger.warn({ staticDir }, 'static folder not found: serving the API only')
  }

  let closing = false
  let active = 0
  let drained: (() => void) | undefined
  // Read at scrape time: what a drain (or a stuck dependency) is waiting on, at no cost per request.
  new Gauge({
    name: 'kvarc_http_requests_in_flight', help: 'HTTP requests being answered (read at scrape time, the scrape itself excluded)',
    registers: [metrics.registry], collect() { this.set(Math.max(0, active - 1)) },
  })

  function count(target: { counts: Map<number, { inc(): void }> }, label: string, status: number): void {
    let child = target.counts.get(status)
    if (!child) target.counts.set(status, child = metrics.requests.labels(label, String(status)))
    child.inc()
  }

  function finish(route: Route | undefined, label: string, status: number, started: number): void {
    const elapsed = (performance.now() - started) / 1000
    if (route) {
      count(route, route.info.routeKey, status)
      route.latency.observe(elapsed)
    } else {
      let own = ownAnswers.get(label)
      if (!own) ownAnswers.set(label, own = { counts: new Map(), latency: metrics.latency.labels(label) })
      count(own, label, status)
      own.latency.observe(elapsed)
    }
  }

  function allowedMethods(methods: Map<string, Route>): string {
    const list = [...methods.keys()]
    if (methods.has('GET') && !methods.has('HEAD')) list.push('HEAD')
    return list.join(', ')
  }

  /** A route declared for `method` in `methods`: `any` takes every method, GET takes HEAD. */
  function routeFor(methods: Map<string, Route>, method: string): Route | undefined {
    return methods.get(method) ?? methods.get('ANY') ?? (method === 'HEAD' ? methods.get('GET') : undefined)
  }

  /** Route for a path that has no exact entry: app.arc's `:param` and `/*` routes, in declaration order. */
  function matchPattern(pathname: string, method: string): { route?: Route, params?: Record<string, string>, allowed: string[] } {
    const allowed: string[] = []
    for (const p of patterns) {
      const m = p.pattern.exec(pathname)
      if (!m) continue
      if (p.method !== method && p.method !== 'ANY' && !(method === 'HEAD' && p.method === 'GET')) { allowed.push(p.method); continue }
      const params: Record<string, string> = {}
      p.names.forEach((name, i) => { params[name] = m[i + 1]! })
      if (p.catchall) params.proxy = m[p.names.length + 1] ?? ''
      return { route: p.route, params, allowed }
    }
    return { allowed }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, started: number, expectsContinue: boolean): Promise<void> {
    const method = req.method ?? 'GET'
    const url: SplitUrl = splitUrl(req.url ?? '/')
    const methods = exact.get(url.pathname)
    let route: Route | undefined
    let params: Record<string, string> | undefined
    if (methods) {
      route = routeFor(methods, method)
      if (!route) {
        // API Gateway sends a method no route of this path declares to the greedy root route, when there is one.
        route = routeFor(fallbacks, method)
        if (!route) {
          const allow = allowedMethods(methods)
          writeAnswer(res, errorAnswer(405, `method ${method} is not allowed on ${url.pathname}; use ${allow}`, { allow }), closing || hasUnreadBody(req))
          finish(undefined, 'unmatched', 405, started)
          return
        }
        params = { proxy: url.pathname.slice(1) }
      }
    } else {
      const operatorEndpoint = operatorEndpoints.get(url.pathname)
      if (operatorEndpoint) {
        const label = `GET ${url.pathname}`
        if (method !== 'GET' && method !== 'HEAD') {
          writeAnswer(res, errorAnswer(405, `method ${method} is not allowed on ${url.pathname}; use GET`, { allow: 'GET, HEAD' }), closing || hasUnreadBody(req))
        } else {
          writeAnswer(res, await operatorEndpoint(), closing)
        }
        finish(undefined, label, res.statusCode, started)
        return
      }
      if (patterns.length) {
        const found = matchPattern(url.pathname, method)
        route = found.route
        params = found.params
        if (!route && found.allowed.length && !routeFor(fallbacks, method)) {
          const allow = found.allowed.join(', ')
          writeAnswer(res, errorAnswer(405, `method ${method} is not allowed on ${url.pathname}; use ${allow}`, { allow }), closing || hasUnreadBody(req))
          finish(undefined, 'unmatched', 405, started)
          return
        }
      }
      if (!route) {
        const servesStatic = staticFiles !== undefined && (method === 'GET' || method === 'HEAD')
        if (servesStatic && await staticFiles!.serve(req, res, url.pathname, closing || hasUnreadBody(req))) {
          finish(undefined, 'static', res.statusCode, started)
          return
        }
        route = routeFor(fallbacks, method)
        if (!route) {
          // The body, if any, is never read: ask the client for a fresh connection.
          writeAnswer(res, errorAnswer(404, `no route ${servesStatic ? 'or file ' : ''}for ${method} ${url.pathname}`), closing || hasUnreadBody(req))
          finish(undefined, 'unmatched', 404, started)
          return
        }
        params = { proxy: url.pathname.slice(1) }
      }
    }

    let body: Buffer | undefined
    const declared = req.headers['content-length']
    if (declared !== undefined || req.headers['transfer-encoding'] !== undefined) {
      const length = declared === undefined ? -1 : Number(declared)
      if (length > maxBodyBytes) {
        writeAnswer(res, errorAnswer(413, `request body is larger than ${maxBodyBytes} bytes`), true)
        finish(route, '', 413, started)
        return
      }
      if (length !== 0) {
        if (expectsContinue) res.writeContinue()
        let read: Buffer | typeof TOO_LARGE
        try {
          read = await readBody(req, maxBodyBytes, length)
        } catch {
          // The client went away mid-body: nobody is left to answer.
          res.destroy()
          finish(route, '', 400, started)
          return
        }
        if (read === TOO_LARGE) {
          writeAnswer(res, errorAnswer(413, `request body is larger than ${maxBodyBytes} bytes`), true)
          finish(route, '', 413, started)
          return
        }
        body = read
      }
    }

    const event = buildHttpEvent(route.info, req, url, body, params)
    const invocation = invoke(route.handler, route.takesCallback, event, new LambdaContext(route.name, Date.now() + route.timeoutMs), route.deadlines)
    await invocation.done
    let answer: HttpAnswer
    if (invocation.timedOut) {
      logger.warn({ route: route.info.routeKey, timeoutMs: route.timeoutMs }, 'function timed out')
      answer = errorAnswer(504, `the function did not answer within ${seconds(route.timeoutMs)}`)
    } else if (invocation.failed) {
      logger.error({ err: invocation.error, route: route.info.routeKey }, 'function failed')
      answer = errorAnswer(500, 'internal error')
    } else {
      try {
        answer = resultToAnswer(invocation.value)
      } catch (error) {
        if (!(error instanceof InvalidResultError)) throw error
        logger.error({ err: error, route: route.info.routeKey }, 'function returned an invalid response')
        answer = errorAnswer(500, 'internal error: the function returned an invalid response')
      }
    }
    writeAnswer(res, answer, closing)
    finish(route, '', answer.statusCode, started)
    route.observe?.(answer.statusCode, answer.headers)
  }

  function hasUnreadBody(req: IncomingMessage): boolean {
    const declared = req.headers['content-length']
    return (declared !== undefined && declared !== '0') || req.headers['transfer-encoding'] !== undefined
  }

  /** Answers one request; never rejects, and counts it in flight until it is answered. */
  async function serve(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const started = performance.now()
    active++
    try {
      await handle(req, res, started, expectsContinue)
    } catch (error) {
      logger.error({ err: error, url: req.url, method: req.method }, 'host failed to answer a request')
      if (!res.headersSent) writeAnswer(res, errorAnswer(500, 'internal error'), true)
      else res.destroy()
    } finally {
      active--
      if (closing) {
        // The answer carried `connection: close`; sockets now idle can go at once.
        server.closeIdleConnections()
        if (active === 0) drained?.()
      }
    }
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    void serve(req, res, false)
  }

  function onCheckContinue(req: IncomingMessage, res: ServerResponse): void {
    void serve(req, res, true)
  }

  const keepAliveTimeout = options.keepAliveTimeoutMs ?? 65_000
  // headersTimeout above keepAliveTimeout, or node may cut a reused socket as its next request starts;
  // requestTimeout (whole request, body included) bounds slow uploads.
  const headersTimeout = keepAliveTimeout + 1_000
  const server = createServer({
    keepAliveTimeout, headersTimeout, requestTimeout: Math.max(120_000, headersTimeout + 1_000),
    maxHeaderSize: options.maxHeaderBytes ?? MAX_HEADER_BYTES,
  }, onRequest)
  // Answer an oversized or misrouted `Expect: 100-continue` request before the client sends its body.
  server.on('checkContinue', onCheckContinue)
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
    const [status, reason, detail] = error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'request headers are too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'the request was not received in time']
        : [400, 'Bad Request', 'malformed HTTP request']
    const body = JSON.stringify({ detail })
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(listenPort, options.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const hostName = options.hostName ?? `host-${address.port}`
  metrics.registry.setDefaultLabels({ host: hostName })
  operator = new Operator({ config, metrics, hostName, checkTimeoutMs: options.checkTimeoutMs, inFlight: () => active - 1 })
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 20_000

  let closed: Promise<void> | undefined
  function close(): Promise<void> {
    closed ??= (async () => {
      closing = true
      const stopped = new Promise<void>(resolve => server.close(() => resolve()))
      server.closeIdleConnections()
      if (active > 0) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          new Promise<void>(resolve => { drained = resolve }),
          new Promise<void>(resolve => { timer = setTimeout(resolve, shutdownTimeoutMs) }),
        ])
        clearTimeout(timer)
        if (active > 0) logger.warn({ active }, 'shutdown deadline passed: cutting off requests still running')
      }
      server.closeAllConnections()
      const results = await Promise.allSettled([stopped, operator!.close()])
      for (const result of results) if (result.status === 'rejected') logger.error({ err: result.reason }, 'error while closing the http host')
    })()
    return closed
  }

  return {
    port: address.port,
    url: `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`,
    hostName,
    server,
    metrics,
    inFlight: () => active,
    close,
  }
}
