/**
 * The wrk script's request logic against a scripted server: what each
 * scenario sends and how it counts the answers. Needs wrk (`apt-get install -y
 * wrk`); asserts on requests and counts, never on speed.
 */
import { execFileSync } from 'node:child_process'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BATCH_OPS, runLoad, SCENARIOS, type LoadOptions } from './load.js'

/** wrk is the bench's load generator (.ci/run installs it): without it this test fails, saying so. */
function requireWrk(): void {
  try { execFileSync('which', ['wrk'], { stdio: 'ignore' }) } catch { throw new Error('wrk is required to test the bench\'s wrk script; on Debian: apt-get install -y wrk') }
}

/** With 8 keys per connection, the sixth key of each has no row: no ETag, so it must never be written. */
const missing = (key: string) => /^rmw-\d+$/.test(key) && Number(key.slice(4)) % 8 === 5

interface BatchOp { op: string, key: string, value?: string }
interface Seen { method: string, key: string, ifMatch?: string, prefer?: string, authorization?: string, path?: string, contentType?: string, atomic?: unknown, ops?: BatchOp[], value?: string, canonical?: boolean }

let server: Server
let url: string
const seen: Seen[] = []
/** The key's version as this server says it: the ETag a GET returns, the If-Match a PUT must send. */
const versions = new Map<string, number>()
const mismatches: string[] = []
let conditionalPuts = 0

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise(resolve => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => resolve(body))
  })
}

beforeAll(async () => {
  requireWrk()
  server = createServer(async (req, res) => {
    const query = new URL(req.url ?? '/', 'http://x').searchParams
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
    const authorization = req.headers.authorization
    if (req.method === 'DELETE') {
      seen.push({ method: 'DELETE', key: query.get('key') ?? '', authorization })
      return json(200, { status: 'queued', version: '9' })
    }
    if (req.method === 'GET') {
      const key = query.get('key') ?? ''
      seen.push({ method: 'GET', key, authorization })
      if (missing(key)) return json(404, { detail: 'key not found' })
      return json(200, { data: { key, value: 'v' } }, { ETag: `"${versions.get(key) ?? 1}"` })
    }
    if (req.method === 'POST' && req.url?.startsWith('/v3/')) {
      // etcd's gateway: key and value in base64, re-encoded here to catch a wrong padding Node's lenient decoder would let through.
      const body = JSON.parse(await readBody(req)) as { key: string, value?: string }
      const decode = (b64: string) => Buffer.from(b64, 'base64').toString()
      const canonical = [body.key, body.value].every(b64 => b64 === undefined || Buffer.from(decode(b64)).toString('base64') === b64)
      seen.push({ method: 'POST', path: req.url, contentType: req.headers['content-type'], authorization, key: decode(body.key), value: body.value === undefined ? undefined : decode(body.value), canonical })
      return json(200, { header: { revision: '1' } })
    }
    if (req.method === 'POST') {
      const body = JSON.parse(await readBody(req)) as { atomic: unknown, ops: BatchOp[] }
      seen.push({ method: 'POST', key: '', path: new URL(req.url ?? '/', 'http://x').pathname, contentType: req.headers['content-type'], prefer: req.headers.prefer as string | undefined, authorization, atomic: body.atomic, ops: body.ops })
      return json(200, { results: body.ops.map(op => ({ key: op.key, version: '9', status: 'queued' })) })
    }
    const { key } = JSON.parse(await readBody(req)) as { key: string }
    const ifMatch = req.headers['if-match'] as string | undefined
    seen.push({ method: 'PUT', key, ifMatch, prefer: req.headers.prefer as string | undefined, authorization })
    if (!key.startsWith('rmw-')) {
      // put-wait: every tenth write "times out".
      return seen.length % 10 === 0 ? json(202, { status: 'queued', version: '9' }, { location: '/api/writes' }) : json(200, { status: 'applied', version: '9' })
    }
    const current = `"${versions.get(key) ?? 1}"`
    if (ifMatch !== current) mismatches.push(`${key}: If-Match ${ifMatch}, current ${current}`)
    // Every seventh conditional write is refused at the API (no body status), every eleventh rejected by the "consumer".
    const n = ++conditionalPuts
    if (n % 7 === 0) return json(412, { detail: 'stale', current: '1' })
    if (n % 11 === 0) return json(412, { detail: 'stale', status: 'rejected', current: '1' })
    versions.set(key, (versions.get(key) ?? 1) + 1)
    json(200, { status: 'applied', version: String(versions.get(key)) })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(() => new Promise<void>(resolve => server.close(() => resolve())))

const options = (scenario: LoadOptions['scenario'], connections: number, span: number): LoadOptions =>
  ({ url, scenario, durationSeconds: 1, connections, threads: 1, base: 0, span, valueBytes: 4 })

describe('the wrk script', () => {
  it('put-if-match: each connection GETs its own keys and PUTs them back with the ETag it read and Prefer: wait', async () => {
    seen.length = 0
    const result = await runLoad(options('put-if-match', 3, 8))
    const puts = seen.filter(s => s.method === 'PUT')
    expect(puts.length).toBeGreaterThan(10)
    // Connections never write each other's keys, so a wrong If-Match would be a connection mixing up its state.
    expect(mismatches).toEqual([])
    expect(new Set(seen.map(s => s.key))).toEqual(new Set(Array.from({ length: 24 }, (_, i) => `rmw-${i}`)))
    expect(puts.every(p => p.prefer === 'wait=5' && p.ifMatch !== undefined)).toBe(true)
    expect(puts.some(p => missing(p.key))).toBe(false)
    const o = result.outcomes!
    expect(o['GET 404']).toBeGreaterThan(0)
    expect(o['412']).toBeGreaterThan(0)
    expect(o['412 rejected']).toBeGreaterThan(0)
    // Answers wrk had not received when it stopped are counted nowhere, so counts can trail what the server sent by one per connection.
    expect(puts.length - ((o['200 applied'] ?? 0) + o['412']! + o['412 rejected']!)).toBeLessThanOrEqual(3)
    expect(Object.values(result.appliedBuckets!).reduce((a, n) => a + n, 0)).toBe(o['200 applied'])
  })

  it('put-wait: the plain PUT with Prefer: wait, its answers counted by status', async () => {
    seen.length = 0
    const result = await runLoad(options('put-wait', 4, 1000))
    const puts = seen.filter(s => s.method === 'PUT')
    expect(puts.every(p => p.prefer === 'wait=5' && p.ifMatch === undefined && /^put-\d+$/.test(p.key))).toBe(true)
    expect(result.outcomes!['200 applied']).toBeGreaterThan(0)
    expect(result.outcomes!['202 queued']).toBeGreaterThan(0)
    expect(result.appliedBuckets).toBeUndefined()
  })

  it.each([...SCENARIOS, 'lag-put' as const])('%s with a token: every request carries the Authorization header', async scenario => {
    seen.length = 0
    const authorization = 'Bearer kvarc_0123456789abcdef_' + 'x'.repeat(43)
    const result = await runLoad({ ...options(scenario, 2, 8), authorization })
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.filter(s => s.authorization !== authorization)).toEqual([])
    expect(result.errors).toBe(0)
  })

  it('without a token no request has an Authorization header, GET and PUT alike', async () => {
    seen.length = 0
    await runLoad(options('mixed', 2, 1000))
    expect(new Set(seen.map(s => s.method))).toEqual(new Set(['GET', 'PUT']))
    expect(seen.filter(s => s.authorization !== undefined)).toEqual([])
  })

  it.each([['batch', false], ['batch-atomic', true]] as const)('%s: POST /api/batch, each a valid JSON batch of BATCH_OPS puts on distinct keys, atomic %s, no Prefer', async (scenario, atomic) => {
    seen.length = 0
    const result = await runLoad({ ...options(scenario, 2, 100_000), threads: 2 })
    const posts = seen.filter(s => s.method === 'POST')
    expect(posts.length).toBeGreaterThan(2)
    expect(posts.length).toBe(seen.length)
    for (const post of posts) {
      expect([post.path, post.contentType, post.prefer, post.atomic]).toEqual(['/api/batch', 'application/json', undefined, atomic])
      expect(post.ops).toHaveLength(BATCH_OPS)
      expect(post.ops!.every(op => op.op === 'put' && /^batch-\d+$/.test(op.key) && op.value === 'vvvv')).toBe(true)
      expect(new Set(post.ops!.map(op => op.key)).size).toBe(BATCH_OPS)
    }
    expect(result.outcomes).toBeUndefined()
    expect(result.errors).toBe(0)
  })

  it('batch: the number of puts per batch follows batchOps, and a batch never names a key twice while the rotation holds it', async () => {
    seen.length = 0
    await runLoad({ ...options('batch', 1, 12), batchOps: 4 })
    const posts = seen.filter(s => s.method === 'POST')
    expect(posts.length).toBeGreaterThan(3)
    for (const post of posts) {
      expect(post.ops).toHaveLength(4)
      expect(new Set(post.ops!.map(op => op.key)).size).toBe(4)
    }
    // 12 keys, 4 a batch: every third batch starts the rotation over.
    expect(posts.slice(0, 3).flatMap(post => post.ops!.map(op => op.key)).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `batch-${i}`).sort())
  })

  it('etcd-get-hit: POST /v3/kv/range with get-hit\'s keys in base64, of every padding', async () => {
    seen.length = 0
    // hit-0 … hit-100: keys of 5, 6 and 7 bytes, so base64 with two, one and no padding characters.
    const result = await runLoad(options('etcd-get-hit', 2, 101))
    expect(seen.filter(s => s.path !== '/v3/kv/range' || s.contentType !== 'application/json' || !s.canonical || s.value !== undefined)).toEqual([])
    expect(new Set(seen.map(s => s.key))).toEqual(new Set(Array.from({ length: 101 }, (_, i) => `hit-${i}`)))
    expect(result.errors).toBe(0)
  })

  it.each([4, 5, 6])('etcd-put: POST /v3/kv/put with put\'s keys and the same %i value bytes, in base64', async valueBytes => {
    seen.length = 0
    const result = await runLoad({ ...options('etcd-put', 2, 1000), valueBytes })
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.filter(s => s.path !== '/v3/kv/put' || !s.canonical || !/^put-\d+$/.test(s.key) || s.value !== 'v'.repeat(valueBytes))).toEqual([])
    expect(result.errors).toBe(0)
  })

  it('plain PUT: no Prefer header, and the answers are not read', async () => {
    seen.length = 0
    const result = await runLoad(options('put', 2, 1000))
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every(s => s.method === 'PUT' && s.prefer === undefined)).toBe(true)
    expect(result.outcomes).toBeUndefined()
  })
})
