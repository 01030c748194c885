/**
 * HTTP request → API Gateway v2 (HTTP API, payload format 2.0) event, and the
 * function's result → HTTP response: the same shapes `arc sandbox` builds
 * (node_modules/@architect/sandbox/src/http/invoke-http/http/_req-fmt.js,
 * _req-header-fmt.js, middleware/_binary-handler.js, _res-fmt.js), so a
 * handler cannot tell which runtime it runs in. Differences from sandbox are
 * deliberate and named where they are made.
 */
import { isUtf8 } from 'node:buffer'
import type { IncomingMessage } from 'node:http'
import { parse as parseQueryString } from 'node:querystring'
import { parse as legacyParseUrl } from 'node:url'

/** The route a request matched, with its precomputed API Gateway route key. */
export interface RouteInfo {
  /** `GET /api`, `GET /items/{id}`: sandbox's routeKey (`:param` → `{param}`, `/*` → `/{proxy+}`). */
  routeKey: string
  /** The route's method, upper case; used when the request carries none. */
  method: string
}

export interface HttpApiEvent {
  version: '2.0'
  routeKey: string
  rawPath: string
  rawQueryString: string
  queryStringParameters?: Record<string, string>
  cookies?: string[]
  headers: Record<string, string>
  requestContext: {
    http: { method: string, path: string, protocol: string, sourceIp: string | null, userAgent: string | null }
    routeKey: string
    timeEpoch: number
    /** API Gateway's request id; here the proxy's X-Request-Id when one stands in front (nginx's $request_id). */
    requestId?: string
  }
  pathParameters?: Record<string, string>
  body?: string
  isBase64Encoded: boolean
}

export interface SplitUrl {
  pathname: string
  /** What follows `?` (without `#…`), '' when none: sandbox's `URL.parse(url).query || ''`. */
  query: string
}

/**
 * Request targets made of unreserved and sub-delimiter characters, starting with
 * a single `/`, parse the same by a plain split at `?` as by the legacy
 * `url.parse` sandbox uses (checked exhaustively for every target of up to
 * three characters, and by property tests). Anything else (quotes, brackets,
 * spaces, `#`, `\`, non-ASCII, absolute-form) goes through `url.parse` itself,
 * which escapes or rewrites some of them, so odd targets still match sandbox.
 */
const PLAIN_TARGET = /^\/(?:[A-Za-z0-9\-._~!$&()*+,;=:%?][A-Za-z0-9\-._~!$&()*+,;=:%/?@]*)?$/

export function splitUrl(url: string): SplitUrl {
  if (PLAIN_TARGET.test(url)) {
    const q = url.indexOf('?')
    return q === -1 ? { pathname: url, query: '' } : { pathname: url.slice(0, q), query: url.slice(q + 1) }
  }
  try {
    const parsed = legacyParseUrl(url)
    return { pathname: parsed.pathname ?? '/', query: parsed.query ?? '' }
  } catch {
    // url.parse throws on a few hostile targets (sandbox would fail them); a plain split still routes them to a 404.
    const q = url.indexOf('?')
    return q === -1 ? { pathname: url, query: '' } : { pathname: url.slice(0, q), query: url.slice(q + 1) }
  }
}

function setParameter(out: Record<string, string>, name: string, value: string): void {
  if (name === '__proto__') {
    const joined = Object.hasOwn(out, name) ? `${out[name]},${value}` : value
    Object.defineProperty(out, name, { value: joined, enumerable: true, writable: true, configurable: true })
  } else {
    out[name] = Object.hasOwn(out, name) ? `${out[name]},${value}` : value
  }
}

/** Queries with nothing to decode, short enough that querystring's 1000-key cap cannot apply. */
const PLAIN_QUERY = /^[^%+]{0,999}$/

/**
 * API Gateway's queryStringParameters: repeated names joined by commas. Parsed
 * as `querystring.parse` does (what sandbox's `URL.parse(url, true)` calls);
 * queries without `%` or `+` skip its decoding pass, which is most of a small
 * GET's parsing time. `__proto__` is defined as data, never as the prototype.
 */
export function queryParameters(query: string): Record<string, string> {
  const out: Record<string, string> = {}
  if (PLAIN_QUERY.test(query)) {
    let start = 0
    while (start < query.length) {
      let end = query.indexOf('&', start)
      if (end === -1) end = query.length
      if (end > start) {
        const eq = query.indexOf('=', start)
        if (eq === -1 || eq > end) setParameter(out, query.slice(start, end), '')
        else setParameter(out, query.slice(start, eq), query.slice(eq + 1, end))
      }
      start = end + 1
    }
    return out
  }
  const parsed = parseQueryString(query)
  for (const name in parsed) {
    const value = parsed[name]
    setParameter(out, name, Array.isArray(value) ? value.join(',') : (value ?? ''))
  }
  return out
}

/** Hop-by-hop headers API Gateway drops from requests (sandbox's list). */
const DROPPED_REQUEST_HEADERS = new Set(['connection', 'expect', 'proxy-authenticate', 'te', 'transfer-encoding', 'upgrade'])

/** Sandbox's `x-forwarded-for || remote address`, with its IPv6 handling (the text after the last colon). */
export function sourceIpOf(req: IncomingMessage): string | null {
  const forwarded = req.headers['x-forwarded-for']
  const ip = (typeof forwarded === 'string' && forwarded !== '' ? forwarded : undefined) ?? req.socket?.remoteAddress
  if (!ip) return null
  const colon = ip.lastIndexOf(':')
  return colon === -1 ? ip : ip.slice(colon + 1)
}

/**
 * Lower-cased headers (node already lower-cases them and joins repeats as API
 * Gateway does), `cookie` lifted into `cookies`, hop-by-hop headers dropped,
 * and the `x-forwarded-*` defaults API Gateway adds.
 */
export function eventHeaders(req: IncomingMessage, sourceIp: string | null): { headers: Record<string, string>, cookies: string[] | undefined } {
  const source = req.headers
  const headers: Record<string, string> = {}
  let cookies: string[] | undefined
  for (const name in source) {
    const value = source[name]
    if (value === undefined) continue
    if (name === 'cookie') {
      const text = Array.isArray(value) ? value.join('; ') : value
      if (text) cookies = text.split(';').map(c => c.trim())
      continue
    }
    if (DROPPED_REQUEST_HEADERS.has(name)) continue
    // Only set-cookie arrives as an array; API Gateway joins repeated headers with commas.
    headers[name] = Array.isArray(value) ? value.join(',') : value
  }
  if (!headers['x-forwarded-for']) headers['x-forwarded-for'] = sourceIp as string
  if (!headers['x-forwarded-port'] && req.socket?.localPort) headers['x-forwarded-port'] = String(req.socket.localPort)
  if (!headers['x-forwarded-proto']) headers['x-forwarded-proto'] = 'http'
  return { headers, cookies }
}

const JSON_CONTENT_TYPE = /^application\/.*json/

/**
 * HTTP APIs keep JSON bodies as (UTF-8 decoded) strings and base64-encode
 * everything else. An empty body is no body at all, as in sandbox.
 *
 * A JSON body whose bytes are not valid UTF-8 is base64-encoded too: decoding
 * it to a string would replace the bad bytes with U+FFFD, and the function
 * could never tell the damage from a real U+FFFD. Base64 hands it the bytes
 * as sent, so its strict decoder can refuse them (src/shared/http.ts readBody).
 */
export function eventBody(contentType: string | undefined, body: Buffer | undefined): { body?: string, isBase64Encoded: boolean } {
  if (!body || body.length === 0) return { isBase64Encoded: false }
  if (contentType !== undefined && JSON_CONTENT_TYPE.test(contentType) && isUtf8(body)) return { body: body.toString('utf8'), isBase64Encoded: false }
  return { body: body.toString('base64'), isBase64Encoded: true }
}

/**
 * The event for one request. `body` is what was read from the request (undefined
 * when it carried none). Sandbox treats a request without `content-length`
 * (chunked) as bodiless; this host reads such bodies, as API Gateway does.
 */
export function buildHttpEvent(route: RouteInfo, req: IncomingMessage, url: SplitUrl, body: Buffer | undefined, pathParameters?: Record<string, string>): HttpApiEvent {
  const sourceIp = sourceIpOf(req)
  const { headers, cookies } = eventHeaders(req, sourceIp)
  const event: HttpApiEvent = {
    version: '2.0',
    routeKey: route.routeKey,
    rawPath: url.pathname,
    rawQueryString: url.query,
  } as HttpApiEvent
  if (url.query) event.queryStringParameters = queryParameters(url.query)
  if (cookies) event.cookies = cookies
  event.headers = headers
  event.requestContext = {
    http: {
      method: req.method || route.method,
      path: url.pathname,
      protocol: `HTTP/${req.httpVersion}`,
      sourceIp,
      userAgent: headers['user-agent'] || null,
    },
    routeKey: route.routeKey,
    // Seconds, as sandbox sends (API Gateway sends milliseconds).
    timeEpoch: Math.floor(Date.now() / 1000),
  }
  const requestId = headers['x-request-id']
  if (requestId) event.requestContext.requestId = requestId
  if (pathParameters && Object.keys(pathParameters).length) event.pathParameters = pathParameters
  const encoded = eventBody(req.headers['content-type'], body)
  if (encoded.body !== undefined) event.body = encoded.body
  event.isBase64Encoded = encoded.isBase64Encoded
  return event
}

/** Sandbox's routeKey resource for an app.arc path: `/items/:id` → `/items/{id}`, `/files/*` → `/files/{proxy+}`. */
export function routeResource(path: string): string {
  let resource = path
  if (resource.includes(':')) resource = resource.split('/').map(part => part.startsWith(':') ? `{${part.slice(1)}}` : part).join('/')
  if (resource.endsWith('/*')) resource = resource.slice(0, -2) + '/{proxy+}'
  return resource
}

// ---------------------------------------------------------------------------
// Responses

/** An HTTP answer ready to write: what every path of the gateway produces (answers.ts writes it). */
export interface HttpAnswer {
  statusCode: number
  headers: Record<string, string | string[]>
  body: string | Buffer
}

/** Response headers API Gateway drops or owns (sandbox's list); node writes its own. */
const DROPPED_RESPONSE_HEADERS = new Set(['connection', 'content-length', 'date', 'upgrade', 'transfer-encoding'])

export class InvalidResultError extends Error {
  override name = 'InvalidResultError'
}

function implicitJson(body: string): HttpAnswer {
  // Sandbox and API Gateway send exactly this content type for implicit returns (no charset).
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body }
}

/**
 * A function's result as API Gateway v2 answers it. A result without
 * `statusCode` is an implicit 200 JSON answer (a string is sent as is); with
 * one, `headers`, `cookies` and a base64 `body` are honoured. `multiValueHeaders`
 * belongs to payload 1.0 and is ignored, as API Gateway does for 2.0. Throws an
 * InvalidResultError for results API Gateway rejects. Sandbox rewrites
 * `; Secure` cookies for plain-HTTP development; this host does not.
 */
export function resultToAnswer(result: unknown): HttpAnswer {
  if (result === undefined || result === null) return implicitJson('null')
  if (result === '') return implicitJson('')
  if (typeof result !== 'object') return implicitJson(typeof result === 'string' ? result : JSON.stringify(result))
  const r = result as { statusCode?: unknown, body?: unknown, headers?: unknown, cookies?: unknown, isBase64Encoded?: unknown }
  if (!r.statusCode) return implicitJson(JSON.stringify(result))

  if (!Number.isInteger(r.statusCode) || (r.statusCode as number) < 100 || (r.statusCode as number) > 599) throw new InvalidResultError('statusCode must be an integer HTTP status')
  if (r.body !== undefined && r.body !== null && typeof r.body !== 'string') throw new InvalidResultError('body must be a string')
  if (r.headers !== undefined && r.headers !== null && (typeof r.headers !== 'object' || Array.isArray(r.headers))) throw new InvalidResultError('headers must be an object')
  if (r.cookies !== undefined && r.cookies !== null && !Array.isArray(r.cookies)) throw new InvalidResultError('cookies must be an array')
  if (r.isBase64Encoded !== undefined && typeof r.isBase64Encoded !== 'boolean') throw new InvalidResultError('isBase64Encoded must be a boolean')

  const headers: Record<string, string | string[]> = {}
  const cookies: string[] = Array.isArray(r.cookies) ? r.cookies.map(String) : []
  let contentType: string | undefined
  if (r.headers) {
    const given = r.headers as Record<string, unknown>
    for (const rawName in given) {
      const value = given[rawName]
      const name = rawName.toLowerCase()
      if (DROPPED_RESPONSE_HEADERS.has(name) || value === undefined || value === null) continue
      if (name === 'set-cookie') {
        if (Array.isArray(value)) cookies.push(...value.map(String))
        else cookies.push(String(value))
        continue
      }
      const text = Array.isArray(value) ? value.map(String).join(',') : String(value)
      if (name === 'content-type') contentType = text
      else headers[name] = text
    }
  }
  headers['content-type'] = contentType || 'text/plain; charset=utf-8'
  if (cookies.length) headers['set-cookie'] = cookies
  const text = typeof r.body === 'string' ? r.body : ''
  const body = r.isBase64Encoded === true && text !== '' ? Buffer.from(text, 'base64') : text
  return { statusCode: r.statusCode as number, headers, body }
}
