/**
 * The warm HTTP host against the real services: routing from app.arc, the same
 * answers as sandbox's pipeline for the same handlers, the host's own JSON
 * errors (404/405/413/500/504), keep-alive, static files, operator endpoints,
 * and graceful shutdown, in-process and of the CLI process on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { Agent, createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http'
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/shared/config.js'
import { MAX_BODY_BYTES } from '../../src/shared/limits.js'
import { declareQueues, eventually, isolate, SERVICES, type Isolated } from '../../test/support/isolated.js'
import { queueDepth, takeMessages } from '../../test/support/kv.js'
import { decodeWrites } from '../../src/shared/messages.js'
import { loadHandler, readAppFunctions, type Handler } from '../app.js'
import { startHttpHost, type HostFunction, type HttpHost } from '../../ops/http-host-main.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const FIXTURES = join(ROOT, 'runtime', 'test-fixtures')
const require = createRequire(import.meta.url)
const sandboxRequest = require('@architect/sandbox/src/http/invoke-http/http/_req-fmt.js') as (p: { method: string, path: string, req: unknown }) => unknown
const sandboxBinary = require('@architect/sandbox/src/http/middleware/_binary-handler.js') as (p: { apiType: string }, req: unknown, res: unknown, next: () => void) => void
const sandboxResponse = require('@architect/sandbox/src/http/invoke-http/http/_res-fmt.js') as (p: { res: unknown, result: unknown }) => unknown

interface Reply { status: number, headers: IncomingHttpHeaders, text: string, body: Buffer, reusedSocket: boolean }

function call(base: string, method: string, path: string, options: { headers?: Record<string, string>, body?: string | Buffer, agent?: Agent } = {}): Promise<Reply> {
  return new Promise((resolvePromise, reject) => {
    const url = new URL(path, base)
    const req = request(url, { method, headers: options.headers, agent: options.agent ?? false, timeout: 20_000 }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, text: body.toString(), body, reusedSocket: req.reusedSocket })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)))
    req.on('error', reject)
    req.end(options.body)
  })
}

function json(reply: Reply): Record<string, unknown> {
  expect(reply.headers['content-type']).toMatch(/^application\/json/)
  return JSON.parse(reply.text) as Record<string, unknown>
}

/** Writes raw bytes on a fresh socket and returns everything the server sends until it closes (bounded). */
function raw(port: number, text: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no complete answer in time')) }, timeoutMs)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('close', () => { clearTimeout(timer); resolvePromise(Buffer.concat(chunks).toString()) })
    socket.on('error', () => {})
    socket.write(text)
  })
}

function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const probe = createNetServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolvePromise(port))
    })
  })
}

function refused(port: number): Promise<boolean> {
  return new Promise(resolvePromise => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolvePromise(false) })
    socket.once('error', (error: NodeJS.ErrnoException) => resolvePromise(error.code === 'ECONNREFUSED'))
  })
}

/** sandbox's HTTP pipeline (binary middleware, request formatter, JSON hop, response formatter) around a handler. */
function sandboxPipeline(routes: { method: string, path: string, handler: Handler }[]): Server {
  return createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?')[0]
    const route = routes.find(r => r.method === req.method && r.path === pathname)
    if (!route) { res.statusCode = 404; res.end(); return }
    sandboxBinary({ apiType: 'http' }, req, res, () => {
      ;(req as unknown as { params: object }).params = {}
      const event = JSON.parse(JSON.stringify(sandboxRequest({ method: route.method.toLowerCase(), path: route.path, req }))) as unknown
      void route.handler(event, {}).then(result => {
        const hopped = result === undefined ? undefined : JSON.parse(JSON.stringify(result)) as unknown
        const body = sandboxResponse({ res, result: hopped }) as string | Buffer | undefined
        res.end(body)
      })
    })
  })
}

let iso: Isolated
let host: HttpHost
let fixtures: HttpHost
let staticDir: string
const tempDirs: string[] = []

function fixture(name: string, method: string, path: string, file: string, timeoutMs = 5000): HostFunction {
  return { name, method, path, file: join(FIXTURES, file), timeoutMs }
}

beforeAll(async () => {
  iso = await isolate('host')
  // The bundles read their config from the environment on first use, as under sandbox.
  Object.assign(process.env, iso.env)
  staticDir = mkdtempSync(join(tmpdir(), 'kvarc-static-'))
  tempDirs.push(staticDir)
  writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>kvarc</title>')
  writeFileSync(join(staticDir, 'app.css'), 'body{margin:0}')
  mkdirSync(join(staticDir, 'docs'))
  writeFileSync(join(staticDir, 'docs', 'index.html'), '<p>docs</p>')
  symlinkSync('/etc/hostname', join(staticDir, 'escape.txt'))

  host = await startHttpHost({ cwd: ROOT, config: iso.config, port: 0, hostName: 'test-a', serveStatic: true, staticDir })
  fixtures = await startHttpHost({
    config: iso.config, port: 0, hostName: 'fixtures', maxBodyBytes: 1024,
    functions: [
      fixture('throws', 'GET', '/boom', 'throwing-handler.mjs'),
      fixture('slow', 'GET', '/slow', 'slow-handler.mjs', 400),
      fixture('echo', 'GET', '/echo', 'echo-handler.mjs'),
      fixture('echo-put', 'PUT', '/echo', 'echo-handler.mjs'),
      fixture('item', 'GET', '/items/:id', 'echo-handler.mjs'),
      fixture('files', 'GET', '/files/*', 'echo-handler.mjs'),
      fixture('shapes', 'GET', '/shapes', 'shapes-handler.mjs'),
      fixture('callback', 'GET', '/callback', 'callback-handler.cjs'),
    ],
  })
})

afterAll(async () => {
  await Promise.allSettled([host?.close(), fixtures?.close()])
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  await iso?.cleanup()
})

describe('routes from app.arc', () => {
  it('serves every HTTP function app.arc declares, and nothing else', async () => {
    const app = await readAppFunctions(ROOT)
    expect(app.http.map(f => `${f.method} ${f.path}`).sort()).toEqual(['ANY /*', 'DELETE /api', 'GET /api', 'GET /api/all', 'GET /api/writes', 'POST /api/batch', 'PUT /api'])
    const all = await call(host.url, 'GET', '/api/all')
    expect(all.status).toBe(200)
    expect(json(all)).toMatchObject({ data: [] })
    const missing = await call(host.url, 'GET', '/api?key=nothing-here')
    expect(missing.status).toBe(404)
    expect(json(missing)).toEqual({ detail: 'key not found' })
    const noKey = await call(host.url, 'GET', '/api')
    expect(noKey.status).toBe(422)
    const put = await call(host.url, 'PUT', '/api', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'k1', value: 'v1' }) })
    expect(put.status).toBe(200)
    expect(json(put)).toMatchObject({ status: 'queued', version: expect.stringMatching(/^\d+$/) })
    const del = await call(host.url, 'DELETE', '/api?key=k1')
    expect(del.status).toBe(200)
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBeGreaterThanOrEqual(1)
  })

  it('sends PUTs that arrive together as one confirmed message, each answered with its own version', async () => {
    // Prepare: the queue declared and emptied of earlier tests' messages.
    await declareQueues(iso)
    await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    const { port } = new URL(host.url)
    const socket = await new Promise<ReturnType<typeof connect>>((done, fail) => {
      const s = connect(Number(port), '127.0.0.1', () => done(s))
      s.on('error', fail)
    })
    // Act: 40 PUTs pipelined in one write, so the host parses them in the same turn of its event loop.
    const requests = Array.from({ length: 40 }, (_, i) => {
      const body = JSON.stringify({ key: `together-${i}`, value: `v${i}` })
      return `PUT /api HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n${i === 39 ? 'connection: close\r\n' : ''}\r\n${body}`
    })
    const text = await new Promise<string>(done => {
      let received = ''
      socket.on('data', (chunk: Buffer) => { received += chunk.toString() })
      socket.on('close', () => done(received))
      socket.write(requests.join(''))
    })
    const versions = [...text.matchAll(/"version":"(\d+)"/g)].map(m => m[1]!)
    expect(text.match(/HTTP\/1\.1 200 /g)).toHaveLength(40)
    // Assess: fewer messages than writes, and every acknowledged version in exactly one of them.
    const messages = await takeMessages(iso.env.AMQP_URL!, iso.config.addQueue)
    const queued = messages.flatMap(m => decodeWrites(m.content, 'put'))
    expect(messages.length).toBeLessThan(40)
    expect(queued.map(w => w.version.toString()).sort()).toEqual([...versions].sort())
    expect(new Set(queued.map(w => w.key)).size).toBe(40)
  })

  it('answers an unknown route with 404 JSON and a wrong method with 405 JSON and Allow', async () => {
    // app.arc's `any /*` answers what no route takes; without one (the fixtures) the host answers itself, alike.
    const unknown = await call(host.url, 'GET', '/api/all/')
    expect(unknown.status).toBe(404)
    expect(json(unknown).detail).toBe('no route for GET /api/all/')
    const noFunction = await call(fixtures.url, 'POST', '/nowhere', { body: 'x' })
    expect(noFunction.status).toBe(404)
    expect(json(noFunction)).toEqual({ detail: 'no route for POST /nowhere' })
    const wrong = await call(host.url, 'POST', '/api', { body: '{}' })
    expect(wrong.status).toBe(405)
    expect(wrong.headers.allow).toBe('GET, PUT, DELETE')
    expect(json(wrong).detail).toBe('method POST is not allowed on /api; use GET, PUT, DELETE')
    const wrongFixture = await call(fixtures.url, 'DELETE', '/echo')
    expect(wrongFixture.status).toBe(405)
    expect(wrongFixture.headers.allow).toBe('GET, PUT, HEAD')
    expect(json(wrongFixture).detail).toBe('method DELETE is not allowed on /echo; use GET, PUT, HEAD')
    const wrongOperator = await call(host.url, 'DELETE', '/health')
    expect(wrongOperator.status).toBe(405)
    expect(json(wrongOperator).detail).toMatch(/use GET/)
  })

  it('refuses bytes that are not UTF-8, in a body or a query, with 422 and queues nothing', async () => {
    // Prepare: the body, and a truncated 4-byte sequence, which a lossy decoder turns into one U+FFFD of the same length.
    await declareQueues(iso)
    const before = await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)
    const bodies = [[0xff, 0xfe, 0xc3, 0x28], [0xf0, 0x9f, 0x98]].map(bad => Buffer.concat([Buffer.from('{"key":"k","value":"'), Buffer.from(bad), Buffer.from('"}')]))
    for (const body of bodies) {
      // Act
      const put = await call(host.url, 'PUT', '/api', { headers: { 'content-type': 'application/json' }, body })
      // Assess
      expect(put.status).toBe(422)
      expect(json(put)).toEqual({ detail: 'request body is not valid UTF-8' })
    }
    for (const path of ['/api?key=%FF', '/api?key=%C3%28', '/api/all?prefix=%E2%82']) {
      const get = await call(host.url, 'GET', path)
      expect(get.status, path).toBe(422)
      expect(json(get).detail, path).toMatch(/is not valid percent-encoded UTF-8/)
    }
    expect(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)).toBe(before)
  })

  it("lets an over-long key reach its function (422), and answers headers past 64 KiB with 431 JSON", async () => {
    const long = await call(host.url, 'GET', `/api?key=${'k'.repeat(20_000)}`)
    expect(long.status).toBe(422)
    expect(json(long)).toEqual({ detail: 'key is larger than 2048 bytes of UTF-8' })
    const huge = await raw(host.port, `GET /api?key=${'k'.repeat(70_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)
    expect(huge).toMatch(/^HTTP\/1\.1 431 /)
    expect(huge).toContain('{"detail":"request headers are too large"}')
  })

  it("answers what no route takes with app.arc's catch-all: 405 with Allow on API paths, 404 JSON elsewhere", async () => {
    for (const [method, path, status, detail, allow] of [
      ['POST', '/api', 405, 'method POST is not allowed on /api; use GET, PUT, DELETE', 'GET, PUT, DELETE'],
      ['PATCH', '/api', 405, 'method PATCH is not allowed on /api; use GET, PUT, DELETE', 'GET, PUT, DELETE'],
      ['PUT', '/api/all', 405, 'method PUT is not allowed on /api/all; use GET', 'GET'],
      ['DELETE', '/nowhere', 404, 'no route for DELETE /nowhere', undefined],
      ['POST', '/', 404, 'no route for POST /', undefined],
      ['GET', '/missing.css', 404, 'no route for GET /missing.css', undefined],
    ] as const) {
      // Act
      // (node's client frames no body for GET or DELETE: those go without one)
      const reply = await call(host.url, method, path, method === 'GET' || method === 'DELETE' ? {} : { headers: { 'content-type': 'application/json' }, body: '{}' })
      // Assess
      expect(reply.status, `${method} ${path}`).toBe(status)
      expect(json(reply), `${method} ${path}`).toEqual({ detail })
      expect(reply.headers.allow, `${method} ${path}`).toBe(allow)
      expect(reply.headers['cache-control']).toBe('no-store')
    }
  })

  it('sends a request no route takes to the greedy root route, as API Gateway does, after its own static files', async () => {
    // Prepare: a host whose app declares `any /*` (an echo) beside exact, :param and catch-all routes.
    const greedy = await startHttpHost({
      config: iso.config, port: 0, hostName: 'greedy', serveStatic: true, staticDir,
      functions: [
        fixture('echo', 'GET', '/echo', 'echo-handler.mjs'),
        fixture('item', 'GET', '/items/:id', 'echo-handler.mjs'),
        fixture('fallback', 'ANY', '/*', 'echo-handler.mjs'),
      ],
    })
    try {
      for (const [method, path, proxy] of [['DELETE', '/echo', 'echo'], ['PUT', '/items/7', 'items/7'], ['POST', '/', ''], ['GET', '/a/b', 'a/b'], ['GET', '/nope.css', 'nope.css']] as const) {
        // Act
        const reply = await call(greedy.url, method, path, method === 'GET' || method === 'DELETE' ? {} : { body: 'x' })
        // Assess
        expect(reply.status, `${method} ${path}`).toBe(200)
        expect(json(reply), `${method} ${path}`).toMatchObject({ routeKey: 'ANY /{proxy+}', rawPath: path, pathParameters: { proxy }, requestContext: { http: { method } } })
      }
      // Static files come first; the routes declared for a path still take their methods.
      const index = await call(greedy.url, 'GET', '/')
      expect([index.status, index.text]).toEqual([200, '<!doctype html><title>kvarc</title>'])
      expect(json(await call(greedy.url, 'GET', '/items/7'))).toMatchObject({ routeKey: 'GET /items/{id}' })
      expect(json(await call(greedy.url, 'GET', '/echo'))).toMatchObject({ routeKey: 'GET /echo' })
    } finally {
      await greedy.close()
    }
  })

  it('routes :param and catch-all paths with API Gateway route keys and path parameters', async () => {
    const item = json(await call(fixtures.url, 'GET', '/items/42?x=1'))
    expect(item).toMatchObject({ routeKey: 'GET /items/{id}', rawPath: '/items/42', pathParameters: { id: '42' }, queryStringParameters: { x: '1' } })
    const file = json(await call(fixtures.url, 'GET', '/files/a/b.txt'))
    expect(file).toMatchObject({ routeKey: 'GET /files/{proxy+}', pathParameters: { proxy: 'a/b.txt' } })
    const wrong = await call(fixtures.url, 'PUT', '/items/42', { body: 'x' })
    expect(wrong.status).toBe(405)
    expect(wrong.headers.allow).toBe('GET')
  })

  it('treats HEAD as GET without a body', async () => {
    const head = await call(host.url, 'HEAD', '/api/all')
    expect(head.status).toBe(200)
    expect(head.text).toBe('')
    expect(head.headers['content-type']).toMatch(/^application\/json/)
  })
})

describe('the same handler answers the same under sandbox and the host', () => {
  let sandbox: Server
  let sandboxUrl: string

  beforeAll(async () => {
    const app = await readAppFunctions(ROOT)
    // loadHandler returns the module the host already loaded: one warm instance behind both front ends.
    const routes = await Promise.all(app.http.map(async f => ({ method: f.method, path: f.path, handler: await loadHandler(f.file) })))
    sandbox = sandboxPipeline(routes)
    await new Promise<void>(r => sandbox.listen(0, '127.0.0.1', r))
    sandboxUrl = `http://127.0.0.1:${(sandbox.address() as AddressInfo).port}`
    // A row written behind the API, read through both.
    await call(host.url, 'GET', '/api?key=warmup')
    const db = new pg.Client({ connectionString: iso.config.databaseUrl })
    await db.connect()
    try {
      await db.query("INSERT INTO kv_store (key, value, version, deleted) VALUES ('both', 'värde ✓', 7, false)")
    } finally {
      await db.end()
    }
  })

  afterAll(() => new Promise<void>(r => sandbox.close(() => r())))

  const requests: { name: string, method: string, path: string, headers?: Record<string, string>, body?: string | Buffer }[] = [
    { name: 'a read that misses', method: 'GET', path: '/api?key=absent' },
    { name: 'a read with no key', method: 'GET', path: '/api' },
    { name: 'a repeated key parameter', method: 'GET', path: '/api?key=a&key=b' },
    { name: 'a page', method: 'GET', path: '/api/all?limit=5' },
    { name: 'a bad limit', method: 'GET', path: '/api/all?limit=0' },
    { name: 'malformed JSON', method: 'PUT', path: '/api', headers: { 'content-type': 'application/json' }, body: '{"key":' },
    { name: 'a number value', method: 'PUT', path: '/api', headers: { 'content-type': 'application/json' }, body: '{"key":"k","value":1}' },
    { name: 'a text/plain body (base64 in the event)', method: 'PUT', path: '/api', headers: { 'content-type': 'text/plain' }, body: 'key=k' },
    { name: 'an empty body', method: 'PUT', path: '/api', headers: { 'content-type': 'application/json' } },
    { name: 'a JSON body that is not valid UTF-8', method: 'PUT', path: '/api', headers: { 'content-type': 'application/json' }, body: Buffer.concat([Buffer.from('{"key":"k","value":"'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]) },
    { name: 'a query that is not valid UTF-8', method: 'GET', path: '/api?key=%FF' },
    { name: 'a delete with no key', method: 'DELETE', path: '/api' },
  ]

  for (const r of requests) {
    it(r.name, async () => {
      const [viaSandbox, viaHost] = [await call(sandboxUrl, r.method, r.path, r), await call(host.url, r.method, r.path, r)]
      expect(viaHost.status).toBe(viaSandbox.status)
      expect(viaHost.headers['content-type']).toBe(viaSandbox.headers['content-type'])
      expect(viaHost.headers['cache-control']).toBe(viaSandbox.headers['cache-control'])
      expect(viaHost.text).toBe(viaSandbox.text)
    })
  }

  it('a cached read, a write and a delete', async () => {
    // The first read fills the cache from PostgreSQL; after that both read Redis.
    expect(json(await call(host.url, 'GET', '/api?key=both')).source).toBe('postgres')
    const [s, h] = [await call(sandboxUrl, 'GET', '/api?key=both'), await call(host.url, 'GET', '/api?key=both')]
    expect(h.status).toBe(200)
    expect(h.text).toBe(s.text)
    expect(json(h)).toEqual({ data: { key: 'both', value: 'värde ✓' }, source: 'redis', version: '7' })
    for (const [method, path, body] of [['PUT', '/api', '{"key":"w","value":"x"}'], ['DELETE', '/api?key=w', undefined]] as const) {
      const init = { headers: { 'content-type': 'application/json' }, body }
      const [viaSandbox, viaHost] = [await call(sandboxUrl, method, path, init), await call(host.url, method, path, init)]
      expect([viaHost.status, viaSandbox.status]).toEqual([200, 200])
      // Versions differ (each write gets its own); the rest is the same.
      expect({ ...json(viaHost), version: 'v' }).toEqual({ ...json(viaSandbox), version: 'v' })
      expect(BigInt(json(viaHost).version as string)).toBeGreaterThan(BigInt(json(viaSandbox).version as string))
    }
  })
})

describe('what the host answers for a function', () => {
  it('a throwing function is a 500 JSON and the host serves on', async () => {
    for (const path of ['/boom', '/boom?sync']) {
      const failed = await call(fixtures.url, 'GET', path)
      expect(failed.status).toBe(500)
      expect(json(failed)).toEqual({ detail: 'internal error' })
      expect(failed.text).not.toMatch(/boom|at /)
    }
    const next = await call(fixtures.url, 'GET', '/slow?ms=1')
    expect(next.status).toBe(200)
    expect(json(next)).toEqual({ slept: 1 })
  })

  it('a function past its timeout is a 504 JSON', async () => {
    const late = await call(fixtures.url, 'GET', '/slow?ms=3000')
    expect(late.status).toBe(504)
    expect(json(late)).toEqual({ detail: 'the function did not answer within 400 ms' })
    expect(late.headers['cache-control']).toBe('no-store')
  })

  it('times out each of many concurrent invocations on its own deadline', async () => {
    const paths = ['/slow?ms=3000', '/slow?ms=1', '/slow?ms=2000', '/slow?ms=50', '/slow?ms=5000']
    const replies = await Promise.all(paths.map(path => call(fixtures.url, 'GET', path)))
    expect(replies.map(r => r.status)).toEqual([504, 200, 504, 200, 504])
    expect(fixtures.inFlight()).toBe(0)
  })

  it('API Gateway v2 result shapes', async () => {
    const object = await call(fixtures.url, 'GET', '/shapes?shape=object')
    expect([object.status, object.headers['content-type'], object.text]).toEqual([200, 'application/json', '{"hello":"world"}'])
    const text = await call(fixtures.url, 'GET', '/shapes?shape=string')
    expect([text.status, text.text]).toEqual([200, 'plain text'])
    const nothing = await call(fixtures.url, 'GET', '/shapes?shape=undefined')
    expect([nothing.status, nothing.text]).toEqual([200, 'null'])
    const binary = await call(fixtures.url, 'GET', '/shapes?shape=binary')
    expect(binary.status).toBe(201)
    expect([...binary.body]).toEqual([0, 1, 2, 255])
    expect(binary.headers['x-custom']).toBe('yes')
    expect(binary.headers['content-length']).toBe('4')
    const cookies = await call(fixtures.url, 'GET', '/shapes?shape=cookies')
    expect(cookies.headers['set-cookie']).toEqual(['a=1; Secure', 'b=2'])
    expect(cookies.headers['content-type']).toBe('text/plain; charset=utf-8')
    const empty = await call(fixtures.url, 'GET', '/shapes')
    expect([empty.status, empty.text]).toEqual([204, ''])
    const invalid = await call(fixtures.url, 'GET', '/shapes?shape=invalid')
    expect(invalid.status).toBe(500)
    expect(json(invalid).detail).toMatch(/invalid response/)
  })

  it('a callback-style function gets a Lambda context', async () => {
    const reply = await call(fixtures.url, 'GET', '/callback')
    expect(reply.status).toBe(200)
    expect(JSON.parse(reply.text)).toEqual({ requestId: 'string', remaining: true })
  })

  it('passes the body as API Gateway does', async () => {
    const event = json(await call(fixtures.url, 'PUT', '/echo', { headers: { 'content-type': 'application/json', cookie: 'a=1' }, body: '{"ü":1}' }))
    expect(event).toMatchObject({ routeKey: 'PUT /echo', body: '{"ü":1}', isBase64Encoded: false, cookies: ['a=1'] })
    const binary = json(await call(fixtures.url, 'PUT', '/echo', { headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([1, 2, 3]) }))
    expect(binary).toMatchObject({ body: 'AQID', isBase64Encoded: true })
  })
})

describe('start', () => {
  it('refuses a function on a path the host answers itself', async () => {
    await expect(startHttpHost({ config: iso.config, port: 0, functions: [fixture('mine', 'GET', '/health', 'echo-handler.mjs')] }))
      .rejects.toThrow(/function on \/health, which every host answers itself/)
  })

  it('fails clearly when a bundle is missing', async () => {
    await expect(startHttpHost({ config: iso.config, port: 0, functions: [{ name: 'x', method: 'GET', path: '/x', timeoutMs: 1000, file: join(FIXTURES, 'nope.mjs') }] }))
      .rejects.toThrow(/nope\.mjs is missing: run npm run build/)
  })
})

describe('body limit', () => {
  it('answers 413 JSON from content-length alone, before any of the body is sent', async () => {
    const answer = await raw(host.port, `PUT /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`)
    expect(answer).toMatch(/^HTTP\/1\.1 413 /)
    expect(answer.toLowerCase()).toContain('connection: close')
    expect(answer.slice(answer.indexOf('\r\n\r\n') + 4)).toBe(JSON.stringify({ detail: `request body is larger than ${MAX_BODY_BYTES} bytes` }))
  })

  it('answers 413 without 100-continue when the client asks first', async () => {
    const answer = await raw(host.port, `PUT /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`)
    expect(answer).toMatch(/^HTTP\/1\.1 413 /)
    expect(answer).not.toContain('100 Continue')
  })

  it('stops reading a chunked body once it passes the limit', async () => {
    const chunk = 'a'.repeat(600)
    const body = `258\r\n${chunk}\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`
    const answer = await raw(fixtures.port, `PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n${body}`)
    expect(answer).toMatch(/^HTTP\/1\.1 413 /)
    expect(answer).toContain('"detail":"request body is larger than 1024 bytes"')
  })

  it('accepts a body at the limit', async () => {
    const body = 'b'.repeat(1024)
    const event = json(await call(fixtures.url, 'PUT', '/echo', { headers: { 'content-type': 'text/plain' }, body }))
    expect(Buffer.from(event.body as string, 'base64').toString()).toBe(body)
  })
})

describe('connections', () => {
  it('keeps one connection alive across requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const replies: Reply[] = []
      for (let i = 0; i < 5; i++) replies.push(await call(host.url, 'GET', '/api?key=nothing-here', { agent }))
      expect(replies.map(r => r.status)).toEqual([404, 404, 404, 404, 404])
      expect(replies.map(r => r.reusedSocket)).toEqual([false, true, true, true, true])
      expect(replies[0]!.headers.connection).toBe('keep-alive')
      expect(replies[0]!.headers['keep-alive']).toBe('timeout=65')
    } finally {
      agent.destroy()
    }
  })

  it('sends 100 Continue, then the answer, when a client with a body in limits asks first', async () => {
    const body = '{"a":1}'
    const answer = await raw(fixtures.port, `PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /)
    expect(answer).toContain('"body":"{\\"a\\":1}"')
  })

  it('serves on when a client goes away while its function runs', async () => {
    const req = request(new URL('/slow?ms=300', fixtures.url), { agent: false })
    const gone = new Promise<string>(resolvePromise => req.on('error', (error: NodeJS.ErrnoException) => resolvePromise(error.code ?? error.message)))
    req.end()
    await eventually(async () => fixtures.inFlight() === 1, 'the request to reach its function')
    req.destroy()
    expect(await gone).toBe('ECONNRESET')
    await eventually(async () => fixtures.inFlight() === 0, 'the abandoned invocation to finish')
    const next = await call(fixtures.url, 'GET', '/slow?ms=1')
    expect(next.status).toBe(200)
  })

  it('answers malformed HTTP with 400 JSON', async () => {
    const answer = await raw(host.port, 'GARBAGE\r\n\r\n')
    expect(answer).toMatch(/^HTTP\/1\.1 400 /)
    expect(answer).toContain('"detail":"malformed HTTP request"')
  })
})

describe('static files', () => {
  it('serves index.html at / and files with their types', async () => {
    const index = await call(host.url, 'GET', '/')
    expect([index.status, index.headers['content-type'], index.text]).toEqual([200, 'text/html; charset=utf-8', '<!doctype html><title>kvarc</title>'])
    expect(index.headers['last-modified']).toBeTruthy()
    const css = await call(host.url, 'GET', '/app.css')
    expect([css.status, css.headers['content-type']]).toEqual([200, 'text/css; charset=utf-8'])
    const docs = await call(host.url, 'GET', '/docs/')
    expect(docs.text).toBe('<p>docs</p>')
    const cached = await call(host.url, 'GET', '/app.css', { headers: { 'if-modified-since': css.headers['last-modified']! } })
    expect(cached.status).toBe(304)
  })

  it('answers 404 JSON for missing files and never leaves the folder', async () => {
    const missing = await call(host.url, 'GET', '/nope.js')
    expect(missing.status).toBe(404)
    expect(json(missing).detail).toBe('no route for GET /nope.js')
    for (const target of ['/../package.json', '/%2e%2e/package.json', '/docs/..%2f..%2fpackage.json', '/..%5cpackage.json', '/index.html%00.css', '/escape.txt', '//etc/passwd']) {
      const answer = await raw(host.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      expect(answer, target).toMatch(/^HTTP\/1\.1 404 /)
      expect(answer, target).toContain('"detail"')
    }
  })

  it('is off unless asked for', async () => {
    const reply = await call(fixtures.url, 'GET', '/')
    expect(reply.status).toBe(404)
    expect(json(reply).detail).toBe('no route for GET /')
  })
})

describe('operator endpoints', () => {
  it('/health says the host is alive, uncached', async () => {
    const health = await call(host.url, 'GET', '/health')
    expect(health.status).toBe(200)
    expect(health.headers['cache-control']).toBe('no-store')
    expect(json(health)).toMatchObject({ status: 'ok', host: 'test-a', uptimeSeconds: expect.any(Number), inFlight: 0 })
  })

  it('/ready checks PostgreSQL, Redis and RabbitMQ and reports queue depths', async () => {
    const ready = await call(host.url, 'GET', '/ready')
    expect(ready.status).toBe(200)
    expect(ready.headers['cache-control']).toBe('no-store')
    const report = json(ready) as { status: string, checks: Record<string, { ok: boolean, queues?: Record<string, { messages: number } | null> }> }
    expect(report.status).toBe('ready')
    expect([report.checks.postgres!.ok, report.checks.redis!.ok, report.checks.rabbitmq!.ok]).toEqual([true, true, true])
    const depth = await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue)
    expect(report.checks.rabbitmq!.queues![iso.config.addQueue]!.messages).toBe(depth)
    expect(Object.keys(report.checks.rabbitmq!.queues!).sort()).toEqual([iso.config.addQueue, `${iso.config.addQueue}.dlq`, iso.config.delQueue, `${iso.config.delQueue}.dlq`].sort())
  })

  it('/ready is 503 naming the service that is down, within its timeout', async () => {
    const deadPort = await freePort()
    const broken = await startHttpHost({
      config: loadConfig({ ...iso.env, DATABASE_URL: `${SERVICES.postgres}/postgres`, REDIS_URL: `redis://127.0.0.1:${deadPort}`, AMQP_URL: `amqp://guest:guest@127.0.0.1:${deadPort}` }),
      functions: [], port: 0, checkTimeoutMs: 500,
    })
    try {
      const ready = await call(broken.url, 'GET', '/ready')
      expect(ready.status).toBe(503)
      const report = json(ready) as { status: string, checks: Record<string, { ok: boolean, error?: string, queues?: unknown }> }
      expect(report.status).toBe('unavailable')
      expect(report.checks.redis).toMatchObject({ ok: false, error: expect.any(String) })
      expect(report.checks.rabbitmq).toMatchObject({ ok: false, error: expect.any(String) })
      expect(report.checks.rabbitmq!.queues).toBeUndefined()
      expect(report.checks.postgres!.ok).toBe(true)
      expect((await call(broken.url, 'GET', '/health')).status).toBe(200)
      // Metrics still answer; queue depths that cannot be read have no sample rather than a stale one.
      const metrics = await call(broken.url, 'GET', '/metrics')
      expect(metrics.status).toBe(200)
      expect(metrics.text).toContain('kvarc_http_requests_total')
      expect(metrics.text).not.toMatch(/^kvarc_queue_messages\{/m)
    } finally {
      await broken.close()
    }
  })

  it('/metrics counts requests by route and status, cache reads, publishes and queue depths', async () => {
    const sampleOf = (text: string) => (name: string, labels: string) => {
      const line = text.split('\n').find(l => l.startsWith(`${name}{`) && labels.split(',').every(label => l.includes(label)))
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
    }
    await call(host.url, 'GET', '/api?key=both')
    const before = sampleOf((await call(host.url, 'GET', '/metrics')).text)
    await call(host.url, 'GET', '/api?key=absent-for-metrics') // a 404 from PostgreSQL...
    await call(host.url, 'GET', '/api?key=absent-for-metrics') // ...then from its negative cache entry: a hit
    await call(host.url, 'PUT', '/api', { headers: { 'content-type': 'application/json' }, body: '{"key":"m","value":"1"}' })
    const metrics = await call(host.url, 'GET', '/metrics')
    expect(metrics.status).toBe(200)
    expect(metrics.headers['cache-control']).toBe('no-store')
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/)
    const text = metrics.text
    const sample = sampleOf(text)
    for (const source of ['redis', 'postgres']) {
      expect(sample('kvarc_cache_reads_total', `source="${source}"`), `404s count as cache reads from ${source}`)
        .toBe((before('kvarc_cache_reads_total', `source="${source}"`) ?? 0) + 1)
    }
    expect(sample('kvarc_http_requests_total', 'route="GET /api",status="404",host="test-a"')).toBeGreaterThanOrEqual(1)
    expect(sample('kvarc_http_requests_total', 'route="GET /api",status="200"')).toBeGreaterThanOrEqual(1)
    expect(sample('kvarc_http_requests_total', 'route="ANY /{proxy+}",status="405"')).toBeGreaterThanOrEqual(1)
    expect(sample('kvarc_http_request_duration_seconds_count', 'route="PUT /api"')).toBeGreaterThanOrEqual(1)
    expect(sample('kvarc_cache_reads_total', 'source="redis"')).toBeGreaterThanOrEqual(1)
    expect(sample('kvarc_cache_reads_total', 'source="postgres"')).toBeGreaterThanOrEqual(1)
    expect(sample('kvarc_publishes_total', `queue="${iso.config.addQueue}",outcome="confirmed"`)).toBeGreaterThanOrEqual(2)
    expect(sample('kvarc_queue_messages', `queue="${iso.config.addQueue}"`)).toBe(await queueDepth(iso.env.AMQP_URL!, iso.config.addQueue))
    expect(sample('kvarc_queue_messages', `queue="${iso.config.delQueue}.dlq"`)).toBe(0)
    expect(text).toMatch(/^kvarc_http_requests_in_flight\{host="test-a"\} 0$/m)
  })
})

describe('graceful shutdown', () => {
  it('close() finishes the request in flight, refuses new connections, then resolves', async () => {
    const draining = await startHttpHost({ config: iso.config, port: 0, functions: [fixture('slow', 'GET', '/slow', 'slow-handler.mjs', 10_000)] })
    const slow = call(draining.url, 'GET', '/slow?ms=800')
    await eventually(async () => draining.inFlight() === 1, 'the slow request to arrive')
    const closed = draining.close()
    expect(draining.close()).toBe(closed)
    expect(await refused(draining.port)).toBe(true)
    const reply = await slow
    expect(reply.status).toBe(200)
    expect(json(reply)).toEqual({ slept: 800 })
    expect(reply.headers.connection).toBe('close')
    await closed
    expect(draining.inFlight()).toBe(0)
  })

  it('close() cuts off a request still running after the deadline', async () => {
    const stuck = await startHttpHost({ config: iso.config, port: 0, shutdownTimeoutMs: 200, functions: [fixture('slow', 'GET', '/slow', 'slow-handler.mjs', 10_000)] })
    const slow = call(stuck.url, 'GET', '/slow?ms=5000').then(() => 'answered', () => 'cut off')
    await eventually(async () => stuck.inFlight() === 1, 'the slow request to arrive')
    await stuck.close()
    expect(await slow).toBe('cut off')
  })

  describe('the CLI process', () => {
    let project: string
    beforeAll(() => {
      // A project of its own: app.arc with one slow function, the real runtime plugin, a prebuilt bundle.
      project = mkdtempSync(join(tmpdir(), 'kvarc-host-cli-'))
      tempDirs.push(project)
      symlinkSync(join(ROOT, 'plugins'), join(project, 'plugins'))
      symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'))
      writeFileSync(join(project, 'app.arc'), '@app\nslowapp\n\n@http\nget /slow\n\n@aws\nruntime typescript\ntimeout 10\n\n@plugins\nesbuild-runtime\n  src plugins/esbuild-runtime/index.mjs\n')
    })

    function startCli(env: Record<string, string>): { child: ChildProcess, output: () => string, exited: Promise<number | null>, listening: Promise<string> } {
      const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'ops', 'http-host-main.ts')], {
        cwd: project, env: { ...process.env, ...iso.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
      })
      let output = ''
      const exited = new Promise<number | null>(r => child.once('exit', code => r(code)))
      const listening = new Promise<string>((resolvePromise, reject) => {
        const timer = setTimeout(() => reject(new Error(`host did not start: ${output}`)), 45_000)
        const onData = (chunk: Buffer) => {
          output += chunk.toString()
          const match = /listening on (http:\/\/\S+)/.exec(output)
          if (match) { clearTimeout(timer); resolvePromise(match[1]!) }
        }
        child.stdout!.on('data', onData)
        child.stderr!.on('data', onData)
        void exited.then(code => { clearTimeout(timer); reject(new Error(`host exited with ${code}: ${output}`)) })
      })
      listening.catch(() => {})
      return { child, output: () => output, exited, listening }
    }

    it('exits non-zero with a clear message when the build is missing', async () => {
      const cli = startCli({ PORT: String(await freePort()) })
      expect(await cli.exited).toBe(1)
      expect(cli.output()).toMatch(/bundle .*build\/http\/get-slow\/index\.mjs is missing/)
      expect(cli.output()).toContain('npm run build')
    })

    it('on SIGTERM (even twice), finishes the request in flight, refuses new connections and exits 0', async () => {
      mkdirSync(join(project, 'build', 'http', 'get-slow'), { recursive: true })
      copyFileSync(join(FIXTURES, 'slow-handler.mjs'), join(project, 'build', 'http', 'get-slow', 'index.mjs'))
      const port = await freePort()
      const cli = startCli({ PORT: String(port), KVARC_HOST_NAME: 'cli' })
      try {
        const url = await cli.listening
        expect(url).toBe(`http://127.0.0.1:${port}`)
        expect(cli.output()).toContain(`kvarc http host cli listening on http://127.0.0.1:${port}`)
        const slow = call(url, 'GET', '/slow?ms=1500')
        await eventually(async () => json(await call(url, 'GET', '/health')).inFlight === 1, 'the slow request to arrive')
        cli.child.kill('SIGTERM')
        await eventually(() => refused(port), 'the listener to close')
        // A second SIGTERM (a supervisor repeating itself) must not cut the drain short.
        cli.child.kill('SIGTERM')
        const reply = await slow
        expect(reply.status).toBe(200)
        expect(json(reply)).toEqual({ slept: 1500 })
        expect(await cli.exited).toBe(0)
      } finally {
        if (cli.child.exitCode === null) cli.child.kill('SIGKILL')
      }
    })
  })
})
