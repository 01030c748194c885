/**
 * The gateway's routing table, as API Gateway routes an HTTP API: exact paths
 * first (a Map lookup), then the caller's endpoints (health, metrics: the
 * gateway's own, never a function's), then app.arc's `:param` and `/*` routes
 * in declaration order. `any` takes every method and GET takes HEAD. A request
 * no route takes goes to the greedy root route (`any /*`, `get /*`) when app.arc
 * declares one, as API Gateway sends it to `ANY /{proxy+}`; without one, a
 * path some route serves answers 405 with Allow, any other 404.
 */
import type { Invoker } from '../invoke.js'
import type { HttpAnswer, RouteInfo } from './event.js'

/** Derives app metrics from a function's answer without the function's help (status, headers). */
export type RouteObserver = (status: number, headers: Record<string, string | string[]>) => void

/** Counts a route's answers by status and times them. */
export interface RouteMeter {
  record(status: number, started: number): void
}

/** A function the gateway serves, with all it needs per request resolved once at start. */
export interface Route {
  info: RouteInfo
  invoker: Invoker
  meter: RouteMeter
  observe?: RouteObserver
}

/** An answer the gateway gives itself on a path, for GET and HEAD (operator endpoints). */
export type Endpoint = () => HttpAnswer | Promise<HttpAnswer>

export interface FunctionMatch { kind: 'function', route: Route, params: Record<string, string> | undefined }

export type Match =
  | FunctionMatch
  | { kind: 'endpoint', path: string, endpoint: Endpoint }
  | { kind: 'not-allowed', allow: string }
  /** No route: static files may answer, then the greedy root route (fallback()), else 404. */
  | { kind: 'none' }

interface PatternRoute {
  method: string
  pattern: RegExp
  names: string[]
  catchall: boolean
  route: Route
}

const NONE: Match = Object.freeze({ kind: 'none' })

/** A route declared for `method` in `methods`: `any` takes every method, GET takes HEAD. */
function routeFor(methods: Map<string, Route>, method: string): Route | undefined {
  return methods.get(method) ?? methods.get('ANY') ?? (method === 'HEAD' ? methods.get('GET') : undefined)
}

function allowedMethods(methods: Map<string, Route>): string {
  const list = [...methods.keys()]
  if (methods.has('GET') && !methods.has('HEAD')) list.push('HEAD')
  return list.join(', ')
}

export class RouteTable {
  private readonly exact = new Map<string, Map<string, Route>>()
  private readonly patterns: PatternRoute[] = []
  /** The greedy root routes (`any /*`, `get /*`) by method: where requests no other route takes go. */
  private readonly fallbacks = new Map<string, Route>()
  /** Matches made once, so an exact hit or an endpoint allocates nothing per request. */
  private readonly exactMatches = new Map<Route, FunctionMatch>()
  private readonly endpoints = new Map<string, Match>()

  /**
   * `routes` with their app.arc paths (`/api`, `/items/:id`, `/files/*`, `/*`).
   * Throws when two functions serve one route key, or a function sits on an
   * endpoint's path, where it would be silently unreachable.
   */
  constructor(routes: readonly { path: string, route: Route }[], endpoints: ReadonlyMap<string, Endpoint> = new Map()) {
    for (const { path, route } of routes) {
      const { method, routeKey } = route.info
      if (path === '/*') {
        if (this.fallbacks.has(method)) throw new Error(`two functions serve ${routeKey}`)
        this.fallbacks.set(method, route)
        continue
      }
      if (path.includes(':') || path.endsWith('/*')) {
        const names: string[] = []
        const catchall = path.endsWith('/*')
        const base = catchall ? path.slice(0, -2) : path
        const source = base.split('/').map(part => {
          if (!part.startsWith(':')) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
          names.push(part.slice(1))
          return '([^/]+)'
        }).join('/')
        this.patterns.push({ method, pattern: new RegExp(`^${source}${catchall ? '(?:/(.*))?' : ''}$`), names, catchall, route })
        continue
      }
      let methods = this.exact.get(path)
      if (!methods) this.exact.set(path, methods = new Map())
      if (methods.has(method)) throw new Error(`two functions serve ${routeKey}`)
      methods.set(method, route)
      this.exactMatches.set(route, Object.freeze({ kind: 'function', route, params: undefined }))
    }
    const answered = [...endpoints.keys()].join(', ')
    for (const [path, endpoint] of endpoints) {
      if (this.exact.has(path)) throw new Error(`app.arc declares a function on ${path}, which every host answers itself (${answered}): move the function to another path`)
      this.endpoints.set(path, Object.freeze({ kind: 'endpoint', path, endpoint }))
    }
  }

  match(method: string, pathname: string): Match {
    const methods = this.exact.get(pathname)
    if (methods) {
      const route = routeFor(methods, method)
      if (route) return this.exactMatches.get(route)!
      // API Gateway sends a method no route of this path declares to the greedy root route, when there is one.
      return this.fallback(method, pathname) ?? { kind: 'not-allowed', allow: allowedMethods(methods) }
    }
    const endpoint = this.endpoints.get(pathname)
    if (endpoint) return endpoint
    if (this.patterns.length === 0) return NONE
    const allowed: string[] = []
    for (const p of this.patterns) {
      const m = p.pattern.exec(pathname)
      if (!m) continue
      if (p.method !== method && p.method !== 'ANY' && !(method === 'HEAD' && p.method === 'GET')) { allowed.push(p.method); continue }
      const params: Record<string, string> = {}
      p.names.forEach((name, i) => { params[name] = m[i + 1]! })
      if (p.catchall) params.proxy = m[p.names.length + 1] ?? ''
      return { kind: 'function', route: p.route, params }
    }
    if (allowed.length && !routeFor(this.fallbacks, method)) return { kind: 'not-allowed', allow: allowed.join(', ') }
    return NONE
  }

  /** The greedy root route for a request nothing else took, with API Gateway's `proxy` parameter. */
  fallback(method: string, pathname: string): FunctionMatch | undefined {
    const route = routeFor(this.fallbacks, method)
    return route && { kind: 'function', route, params: { proxy: pathname.slice(1) } }
  }
}
