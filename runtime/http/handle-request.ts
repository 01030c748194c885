/**
 * One request, from its route to its answer: match the route (405 / endpoint /
 * static file / greedy root route / 404), read the body within the limit
 * (413), build the API Gateway v2 event, invoke the function under its
 * timeout, answer its outcome (result / 500 / 504), then count the answer and
 * let the caller observe it.
 *
 * Hot path: a Map lookup per request, no logging, no client creation, no
 * closure, metric children resolved once per route and status, one write per
 * response.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { bodyTooLarge, errorAnswer, methodNotAllowed, outcomeAnswer, writeAnswer, type GatewayLogger } from './answers.js'
import { buildHttpEvent, splitUrl } from './event.js'
import type { Meters } from './meters.js'
import { CLIENT_GONE, TOO_LARGE, declaredBodyLength, hasUnreadBody, readBody } from './request.js'
import type { Route, RouteTable } from './routes.js'
import type { RequestHandling } from './server.js'
import type { StaticFiles } from './static-files.js'

export interface RequestHandlerOptions {
  routes: RouteTable
  meters: Meters
  maxBodyBytes: number
  /** Serves the @static folder for GET and HEAD requests no route takes, when given. */
  staticFiles?: StaticFiles
  logger: GatewayLogger
  /** Whether the server is closing: every answer then asks for a fresh connection. */
  lifecycle: { readonly closing: boolean }
}

export class RequestHandler implements RequestHandling {
  private readonly routes: RouteTable
  private readonly meters: Meters
  private readonly maxBodyBytes: number
  private readonly staticFiles: StaticFiles | undefined
  private readonly logger: GatewayLogger
  private readonly lifecycle: { readonly closing: boolean }

  constructor(options: RequestHandlerOptions) {
    this.routes = options.routes
    this.meters = options.meters
    this.maxBodyBytes = options.maxBodyBytes
    this.staticFiles = options.staticFiles
    this.logger = options.logger
    this.lifecycle = options.lifecycle
  }

  async handle(req: IncomingMessage, res: ServerResponse, started: number, expectsContinue: boolean): Promise<void> {
    const method = req.method ?? 'GET'
    const url = splitUrl(req.url ?? '/')
    let match = this.routes.match(method, url.pathname)
    if (match.kind === 'not-allowed') {
      writeAnswer(res, methodNotAllowed(method, url.pathname, match.allow), this.lifecycle.closing || hasUnreadBody(req))
      this.meters.ownAnswer('unmatched').record(405, started)
      return
    }
    if (match.kind === 'endpoint') {
      if (method !== 'GET' && method !== 'HEAD') {
        writeAnswer(res, errorAnswer(405, `method ${method} is not allowed on ${url.pathname}; use GET`, { allow: 'GET, HEAD' }), this.lifecycle.closing || hasUnreadBody(req))
      } else {
        writeAnswer(res, await match.endpoint(), this.lifecycle.closing)
      }
      this.meters.ownAnswer(`GET ${match.path}`).record(res.statusCode, started)
      return
    }
    if (match.kind === 'none') {
      const servesStatic = this.staticFiles !== undefined && (method === 'GET' || method === 'HEAD')
      if (servesStatic && await this.staticFiles!.serve(req, res, url.pathname, this.lifecycle.closing || hasUnreadBody(req))) {
        this.meters.ownAnswer('static').record(res.statusCode, started)
        return
      }
      const fallback = this.routes.fallback(method, url.pathname)
      if (!fallback) {
        // The body, if any, is never read: ask the client for a fresh connection.
        writeAnswer(res, errorAnswer(404, `no route ${servesStatic ? 'or file ' : ''}for ${method} ${url.pathname}`), this.lifecycle.closing || hasUnreadBody(req))
        this.meters.ownAnswer('unmatched').record(404, started)
        return
      }
      match = fallback
    }
    const route: Route = match.route

    let body: Buffer | undefined
    const length = declaredBodyLength(req)
    if (length !== undefined) {
      if (length > this.maxBodyBytes) {
        writeAnswer(res, bodyTooLarge(this.maxBodyBytes), true)
        route.meter.record(413, started)
        return
      }
      if (length !== 0) {
        const read = await readBody(req, res, this.maxBodyBytes, expectsContinue)
        if (read === CLIENT_GONE) {
          res.destroy()
          route.meter.record(400, started)
          return
        }
        if (read === TOO_LARGE) {
          writeAnswer(res, bodyTooLarge(this.maxBodyBytes), true)
          route.meter.record(413, started)
          return
        }
        body = read
      }
    }

    const event = buildHttpEvent(route.info, req, url, body, match.params)
    const invocation = route.invoker.start(event)
    await invocation.done
    const answer = outcomeAnswer(invocation, route.info.routeKey, route.invoker.timeoutMs, this.logger)
    writeAnswer(res, answer, this.lifecycle.closing)
    route.meter.record(answer.statusCode, started)
    route.observe?.(answer.statusCode, answer.headers)
  }
}
