/**
 * API Gateway v2 (HTTP API, payload 2.0) events in, `{statusCode, headers, body}`
 * out. `withHttpErrors` is the one place where errors become responses: typed
 * errors keep their status and message, anything else is a generic 500 whose
 * cause goes to the log, never to the client.
 */
import { HttpError, PayloadTooLargeError, ValidationError } from './errors.js'
import { MAX_BODY_BYTES } from './limits.js'
import { errorThrottled } from './log.js'

export interface HttpEvent {
  version?: string
  routeKey?: string
  rawPath?: string
  rawQueryString?: string
  queryStringParameters?: Record<string, string | undefined>
  headers?: Record<string, string | undefined>
  body?: string
  isBase64Encoded?: boolean
  requestContext?: { http?: { method?: string, path?: string }, requestId?: string }
}

export interface HttpResult {
  statusCode: number
  headers: Record<string, string>
  body: string
}

const JSON_HEADERS = Object.freeze({
  'content-type': 'application/json; charset=utf-8',
  // Answers describe a moment of a changing store: never let a proxy or browser reuse one.
  'cache-control': 'no-store',
})

export function json(statusCode: number, body: unknown, headers?: Record<string, string>): HttpResult {
  return { statusCode, headers: headers ? { ...JSON_HEADERS, ...headers } : { ...JSON_HEADERS }, body: JSON.stringify(body) }
}

/**
 * The request's id for the logs: API Gateway's (or the proxy's X-Request-Id, as
 * the warm hosts pass it on), else the invocation's. Logs carry it, never a
 * token or a value, so a client's report can be matched to its line.
 */
function requestIdOf(event: HttpEvent | undefined, context: { awsRequestId?: string } | undefined): string | undefined {
  return event?.requestContext?.requestId ?? event?.headers?.['x-request-id'] ?? context?.awsRequestId
}

/** Wraps a handler so every failure is a JSON answer with a `detail`. */
export function withHttpErrors<E extends HttpEvent>(handler: (event: E) => Promise<HttpResult>) {
  return async function httpHandler(event: E, context?: { awsRequestId?: string }): Promise<HttpResult> {
    try {
      return await handler(event)
    } catch (error) {
      const where = { route: event?.routeKey, requestId: requestIdOf(event, context) }
      if (error instanceof HttpError) {
        if (error.statusCode >= 500) errorThrottled(`${event?.routeKey} ${error.message}`, { err: error.cause ?? error, ...where }, error.message)
        return json(error.statusCode, { detail: error.message }, error.headers)
      }
      errorThrottled(`${event?.routeKey} unhandled ${(error as Error)?.message}`, { err: error, ...where }, 'unhandled error in handler')
      return json(500, { detail: 'internal error' })
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

function decodeComponent(name: string, text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '))
  } catch {
    throw new ValidationError(`query parameter ${JSON.stringify(name)} is not valid percent-encoded UTF-8`)
  }
}

/**
 * Query parameters parsed from `rawQueryString`, not `queryStringParameters`:
 * API Gateway joins repeated parameters with commas and silently replaces bad
 * UTF-8, and a key may contain both. Repeating a parameter is an error.
 */
export function parseQuery(event: HttpEvent): Map<string, string> {
  const params = new Map<string, string>()
  const raw = event.rawQueryString ?? ''
  if (raw === '') return params
  for (const part of raw.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = decodeComponent('name', eq === -1 ? part : part.slice(0, eq))
    const value = decodeComponent(name, eq === -1 ? '' : part.slice(eq + 1))
    if (params.has(name)) throw new ValidationError(`query parameter ${JSON.stringify(name)} given more than once`)
    params.set(name, value)
  }
  return params
}

/** The request body as text: base64 decoded when flagged, bounded, strict UTF-8. */
export function readBody(event: HttpEvent): string {
  const body = event.body
  if (body === undefined || body === null || body === '') throw new ValidationError('request body is empty: send a JSON object {"key": string, "value": string}')
  if (event.isBase64Encoded) {
    if (body.length > Math.ceil(MAX_BODY_BYTES / 3) * 4) throw new PayloadTooLargeError(`request body is larger than ${MAX_BODY_BYTES} bytes`)
    try {
      return utf8.decode(Buffer.from(body, 'base64'))
    } catch {
      throw new ValidationError('request body is not valid UTF-8')
    }
  }
  if (body.length > MAX_BODY_BYTES || (body.length * 3 > MAX_BODY_BYTES && Buffer.byteLength(body) > MAX_BODY_BYTES)) {
    throw new PayloadTooLargeError(`request body is larger than ${MAX_BODY_BYTES} bytes`)
  }
  return body
}

/** Parses a JSON object body; malformed JSON is a 422, never a 500. */
export function readJsonObject(event: HttpEvent): Record<string, unknown> {
  const text = readBody(event)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new ValidationError('request body is not valid JSON')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ValidationError(`request body must be a JSON object, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed}`)
  }
  return parsed as Record<string, unknown>
}

/** The `key` query parameter of GET/DELETE /api, validated; `params` when the caller parsed the query already. */
export function requireKeyParam(event: HttpEvent, problem: (key: unknown) => { message: string } | undefined, params = parseQuery(event)): string {
  const key = params.get('key')
  if (key === undefined) throw new ValidationError('query parameter "key" is required, e.g. /api?key=my-key')
  const bad = problem(key)
  if (bad) throw new ValidationError(bad.message)
  return key
}
