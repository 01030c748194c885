/**
 * The host's API Gateway v2 events and responses against sandbox's own
 * formatters: each request is sent over real HTTP to a server that builds the
 * event both ways from the same IncomingMessage (sandbox's binary-body
 * middleware + request formatter, and ours); the results must be identical
 * except for `timeEpoch` (a clock read).
 */
import fc from 'fast-check'
import { createServer, request, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { parse as parseQueryString } from 'node:querystring'
import { parse as legacyParseUrl } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildHttpEvent, queryParameters, resultToAnswer, routeResource, splitUrl, InvalidResultError } from './event.js'

const require = createRequire(import.meta.url)
type Formatter = (params: { method: string, path: string, req: unknown }) => Record<string, unknown>
const sandboxRequest = require('@architect/sandbox/src/http/invoke-http/http/_req-fmt.js') as Formatter
const sandboxBinary = require('@architect/sandbox/src/http/middleware/_binary-handler.js') as (params: { apiType: string }, req: unknown, res: unknown, next: () => void) => void
const sandboxResponse = require('@architect/sandbox/src/http/invoke-http/http/_res-fmt.js') as (params: { res: unknown, result: unknown }) => unknown

interface Both { sandbox: Record<string, unknown>, ours: Record<string, unknown> }

let server: Server
let port: number

/** Both events for one request; JSON round trip, as sandbox sends events to its runtime as JSON. */
function buildBoth(req: IncomingMessage, route: { method: string, path: string }, done: (both: Both) => void): void {
  const chunks: Buffer[] = []
  let sandbox: Record<string, unknown> | undefined
  let ours: Record<string, unknown> | undefined
  const finish = () => { if (sandbox && ours) done({ sandbox, ours }) }
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  // Sandbox's middleware reads the body only when content-length is set; ours is built once the body ended.
  req.on('end', () => {
    const event = buildHttpEvent({ routeKey: `${route.method.toUpperCase()} ${routeResource(route.path)}`, method: route.method.toUpperCase() }, req, splitUrl(req.url ?? '/'), chunks.length ? Buffer.concat(chunks) : undefined)
    ours = JSON.parse(JSON.stringify(event)) as Record<string, unknown>
    finish()
  })
  sandboxBinary({ apiType: 'http' }, req, {}, () => {
    ;(req as unknown as { params: object }).params = {}
    sandbox = JSON.parse(JSON.stringify(sandboxRequest({ method: route.method, path: route.path, req }))) as Record<string, unknown>
    finish()
  })
}

beforeAll(async () => {
  server = createServer((req, res) => {
    buildBoth(req, { method: req.method === 'HEAD' ? 'get' : (req.method ?? 'get').toLowerCase(), path: '/api' }, both => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(both))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})

afterAll(() => new Promise<void>(resolve => server.close(() => resolve())))

function send(method: string, path: string, headers: Record<string, string | string[]> = {}, body?: Buffer | string): Promise<Both> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: method === 'HEAD' ? 'POST' : method, path, headers, agent: false }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as Both))
    })
    req.on('error', reject)
    if (body !== undefined) req.end(body)
    else req.end()
  })
}

function withoutClock(event: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(event) as { requestContext?: { timeEpoch?: number } }
  expect(typeof copy.requestContext?.timeEpoch).toBe('number')
  delete copy.requestContext!.timeEpoch
  return copy as Record<string, unknown>
}

describe('request events are the ones sandbox builds', () => {
  const cases: { name: string, method: string, path: string, headers?: Record<string, string | string[]>, body?: string | Buffer }[] = [
    { name: 'GET with a key', method: 'GET', path: '/api?key=hello' },
    { name: 'GET without query', method: 'GET', path: '/api' },
    { name: 'GET with an empty query', method: 'GET', path: '/api?' },
    { name: 'GET with only separators', method: 'GET', path: '/api?&&' },
    { name: 'repeated and encoded parameters', method: 'GET', path: '/api?key=a%20b&x=1&x=2&empty=&flag&plus=a+b&euro=%E2%82%AC' },
    { name: 'bad percent-encoding', method: 'GET', path: '/api?key=%E2%82&k%ZZ=1' },
    { name: 'cookies and custom headers', method: 'GET', path: '/api?key=c', headers: { Cookie: 'a=1; b=two ;c=3', 'X-Custom': 'Yes', 'User-Agent': 'kvarc-test/1' } },
    { name: 'a client-supplied x-forwarded-for', method: 'GET', path: '/api?key=f', headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-port': '443' } },
    { name: 'hop-by-hop headers dropped', method: 'GET', path: '/api?key=h', headers: { Connection: 'keep-alive', TE: 'trailers', Upgrade: 'h2c' } },
    { name: 'repeated headers', method: 'GET', path: '/api?key=r', headers: { 'x-many': ['1', '2'], accept: ['a/b', 'c/d'] } },
    { name: 'PUT with a JSON body', method: 'PUT', path: '/api', headers: { 'content-type': 'application/json' }, body: '{"key":"k","value":"ünïcödé ✓"}' },
    { name: 'PUT with a vendor JSON type', method: 'PUT', path: '/api', headers: { 'content-type': 'application/vnd.api+json; charset=utf-8' }, body: '{"key":"k","value":"v"}' },
    // Sandbox as patched by scripts/patch-dependencies.mjs (stock 7.1.0 decodes it with U+FFFD).
    { name: 'PUT with a JSON body that is not valid UTF-8 (base64)', method: 'PUT', path: '/api', headers: { 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]) },
    { name: 'PUT with a text body (base64)', method: 'PUT', path: '/api', headers: { 'content-type': 'text/plain' }, body: 'key=value' },
    { name: 'PUT with binary bytes', method: 'PUT', path: '/api', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([0, 255, 128, 10, 13]) },
    { name: 'PUT without a content type', method: 'PUT', path: '/api', body: '{"key":"k","value":"v"}' },
    { name: 'PUT with an empty body', method: 'PUT', path: '/api', headers: { 'content-type': 'application/json', 'content-length': '0' }, body: '' },
    { name: 'DELETE with a key', method: 'DELETE', path: '/api?key=gone' },
    { name: 'a path with odd characters', method: 'GET', path: "/api?key='q\"<>{}|^`" },
  ]

  for (const c of cases) {
    it(c.name, async () => {
      // Prepare / Act
      const { sandbox, ours } = await send(c.method, c.path, c.headers, c.body)
      // Assess
      expect(withoutClock(ours)).toEqual(withoutClock(sandbox))
      expect(Math.abs((ours.requestContext as { timeEpoch: number }).timeEpoch - (sandbox.requestContext as { timeEpoch: number }).timeEpoch)).toBeLessThanOrEqual(1)
    })
  }

  it('gives the route key, method, body and query a handler reads', async () => {
    const { ours } = await send('PUT', '/api?x=1&x=2', { 'content-type': 'application/json', cookie: 'session=s1' }, '{"key":"k"}')
    expect(ours).toMatchObject({
      version: '2.0', routeKey: 'PUT /api', rawPath: '/api', rawQueryString: 'x=1&x=2',
      queryStringParameters: { x: '1,2' }, cookies: ['session=s1'], body: '{"key":"k"}', isBase64Encoded: false,
      requestContext: { http: { method: 'PUT', path: '/api', protocol: 'HTTP/1.1' }, routeKey: 'PUT /api' },
    })
    expect((ours.headers as Record<string, string>)['x-forwarded-proto']).toBe('http')
    expect((ours.headers as Record<string, string>).cookie).toBeUndefined()
  })

  it('hands a JSON body that is not valid UTF-8 over as its bytes, base64-encoded, never with U+FFFD', async () => {
    for (const bad of [[0xff, 0xfe, 0xc3, 0x28], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80]]) {
      // Prepare: a truncated 4-byte sequence decodes lossily to one U+FFFD of the same length; ED A0 80 is a UTF-16 surrogate.
      const body = Buffer.concat([Buffer.from('{"key":"k","value":"'), Buffer.from(bad), Buffer.from('"}')])
      // Act
      const { ours } = await send('PUT', '/api', { 'content-type': 'application/json' }, body)
      // Assess
      expect(ours.isBase64Encoded).toBe(true)
      expect(Buffer.from(ours.body as string, 'base64').equals(body)).toBe(true)
    }
    const { ours: valid } = await send('PUT', '/api', { 'content-type': 'application/json' }, '{"value":"\uFFFD is a character too"}')
    expect(valid).toMatchObject({ body: '{"value":"\uFFFD is a character too"}', isBase64Encoded: false })
  })

  it('reads a chunked body, which sandbox drops (a deliberate difference: API Gateway keeps it)', async () => {
    const { sandbox, ours } = await send('PUT', '/api', { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, '{"key":"chunked"}')
    expect(sandbox.body).toBeUndefined()
    expect(ours.body).toBe('{"key":"chunked"}')
  })
})

describe('url and query parsing', () => {
  it('splits request targets exactly as the legacy url.parse sandbox uses', () => {
    const alphabet = fc.constantFrom(...'/?#&=%+abcAZ09 .-_~\\\'"<>{}|^`:;@,!$*()[]é€\u0000\t'.split(''))
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 24 }).map(chars => '/' + chars.join('')), target => {
      let legacy: ReturnType<typeof legacyParseUrl>
      try {
        legacy = legacyParseUrl(target)
      } catch {
        // Targets url.parse rejects (sandbox cannot serve them either) only need to route somewhere.
        expect(splitUrl(target).pathname.startsWith('/')).toBe(true)
        return
      }
      expect(splitUrl(target)).toEqual({ pathname: legacy.pathname ?? '/', query: legacy.query ?? '' })
    }), { numRuns: 3000 })
  })

  it('parses query strings exactly as querystring.parse (sandbox), joined by commas', () => {
    const alphabet = fc.constantFrom(...'&=ab%2+_.~-'.split(''), '__proto__', 'constructor', '%E2%82%AC', '%zz')
    fc.assert(fc.property(fc.array(alphabet, { maxLength: 30 }).map(parts => parts.join('')), query => {
      const expected: Record<string, string> = {}
      for (const [name, value] of Object.entries(parseQueryString(query))) {
        Object.defineProperty(expected, name, { value: Array.isArray(value) ? value.join(',') : value, enumerable: true, writable: true, configurable: true })
      }
      expect(JSON.stringify(queryParameters(query))).toBe(JSON.stringify(expected))
    }), { numRuns: 3000 })
    // The 1000-key cap of querystring.parse still applies to long queries.
    const many = Array.from({ length: 1100 }, (_, i) => `k${i}=${i}`).join('&')
    expect(Object.keys(queryParameters(many))).toHaveLength(1000)
  })

  it('joins repeated parameters with commas and keeps __proto__ as data', () => {
    const params = queryParameters('a=1&a=2&b=&__proto__=x&c=%E2%82%AC')
    expect(params).toEqual({ a: '1,2', b: '', ['__proto__']: 'x', c: '€' })
    expect(Object.getPrototypeOf(params)).toBe(Object.prototype)
  })

  it('turns app.arc paths into API Gateway route keys', () => {
    expect(routeResource('/api')).toBe('/api')
    expect(routeResource('/items/:id/parts/:part')).toBe('/items/{id}/parts/{part}')
    expect(routeResource('/files/*')).toBe('/files/{proxy+}')
  })
})

describe('responses are the ones sandbox (API Gateway v2) gives', () => {
  /** Sandbox's formatter on a recording response object. */
  function sandboxAnswer(result: unknown) {
    const headers: Record<string, unknown> = {}
    const res = { statusCode: 0, setHeader: (name: string, value: unknown) => { headers[name.toLowerCase()] = value } }
    const body = sandboxResponse({ res, result })
    return { statusCode: res.statusCode, headers, body: Buffer.isBuffer(body) ? body : Buffer.from(body === undefined ? '' : String(body)) }
  }

  const results: [string, unknown][] = [
    ['undefined', undefined],
    ['an empty string', ''],
    ['a plain string', 'hello'],
    ['an object without statusCode', { data: [1, 2], ok: true }],
    ['a number', 42],
    ['a full JSON answer', { statusCode: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body: '{"a":1}' }],
    ['mixed-case and dropped headers', { statusCode: 503, headers: { 'Retry-After': '1', 'Content-Length': '999', Connection: 'close', Date: 'x' }, body: 'busy' }],
    ['no content type', { statusCode: 404, body: 'nothing' }],
    ['no body', { statusCode: 204 }],
    ['cookies and set-cookie', { statusCode: 200, cookies: ['a=1', 'b=2; HttpOnly'], headers: { 'Set-Cookie': 'c=3' }, body: 'ok' }],
    ['a base64 body', { statusCode: 200, headers: { 'content-type': 'image/png' }, body: Buffer.from([137, 80, 78, 71, 0, 255]).toString('base64'), isBase64Encoded: true }],
  ]

  for (const [name, result] of results) {
    it(name, () => {
      const expected = sandboxAnswer(structuredClone(result))
      const answer = resultToAnswer(structuredClone(result))
      expect(answer.statusCode).toBe(expected.statusCode)
      expect(answer.headers).toEqual(expected.headers)
      expect(Buffer.from(answer.body)).toEqual(expected.body)
    })
  }

  it('keeps `Secure` on cookies (sandbox strips it for plain-HTTP development)', () => {
    expect(resultToAnswer({ statusCode: 200, cookies: ['s=1; Secure'] }).headers['set-cookie']).toEqual(['s=1; Secure'])
  })

  it('rejects results API Gateway rejects', () => {
    expect(() => resultToAnswer({ statusCode: 200, body: { a: 1 } })).toThrow(InvalidResultError)
    expect(() => resultToAnswer({ statusCode: '200', body: 'x' })).toThrow(InvalidResultError)
    expect(() => resultToAnswer({ statusCode: 200, headers: ['x'] })).toThrow(InvalidResultError)
    expect(() => resultToAnswer({ statusCode: 200, cookies: 'a=1' })).toThrow(InvalidResultError)
    expect(() => resultToAnswer({ statusCode: 200, isBase64Encoded: 'yes' })).toThrow(InvalidResultError)
  })
})
