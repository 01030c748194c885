/**
 * Authentication end to end, through nginx in front of two warm hosts and the
 * consumer host, with KVARC_AUTH=required: every route against no token, a
 * malformed one, an unknown one, a revoked one, one without the scope and one
 * with it; revocation within the token cache time; and a fuzz of methods,
 * paths, headers, query strings and bodies that must never give a 5xx, an
 * error without a JSON detail, or a byte of data outside the token's scope.
 */
import fc from 'fast-check'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startStack, type Stack } from '../../ops/stack.js'
import { createToken, revokeToken } from '../../ops/tokens.js'
import { openDatabase } from '../../src/shared/postgres.js'
import { applyWrites } from '../../src/shared/store.js'
import { versionAtMillis } from '../../src/shared/version.js'
import { isolate, type Isolated } from '../support/isolated.js'
import { checkResponse } from '../support/openapi.js'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))
const TOKEN_CACHE_MS = 1000
const SECRET = 'the-secret-value-outside-scope'

let iso: Isolated
let stack: Stack
let db: pg.Pool
const output: string[] = []
const tokens: Record<'right' | 'wrong' | 'revoked', string> = { right: '', wrong: '', revoked: '' }

interface Answer { status: number, body: any, headers: Headers, text: string }

async function call(method: string, path: string, options: { token?: string, authorization?: string, body?: string, headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  if (options.authorization !== undefined) headers.authorization = options.authorization
  if (options.body !== undefined) headers['content-type'] ??= 'application/json'
  const response = await fetch(stack.url + path, { method, headers, body: options.body, signal: AbortSignal.timeout(20_000) })
  const text = await response.text()
  let body: unknown
  try { body = JSON.parse(text) } catch { body = undefined }
  // Every answer, the fuzz's included, must be one the API's document describes.
  checkResponse(method, path, { status: response.status, headers: response.headers, body, text })
  return { status: response.status, body, headers: response.headers, text }
}

beforeAll(async () => {
  iso = await isolate('auth_e2e')
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  tokens.right = (await createToken(db, { name: 'app', rules: [{ prefix: 'app/', access: 'readwrite' }], admin: false })).token
  tokens.wrong = (await createToken(db, { name: 'other', rules: [{ prefix: 'other/', access: 'readwrite' }, { prefix: 'app/', access: 'deny' }], admin: false })).token
  tokens.revoked = (await createToken(db, { name: 'gone', rules: [{ prefix: '', access: 'readwrite' }], admin: false })).token
  await revokeToken(db, 'gone')
  let v = versionAtMillis(Date.now())
  await applyWrites(db, [
    { key: 'app/k', value: 'mine', version: (v += 2048n), deleted: false },
    { key: 'secret/k', value: SECRET, version: (v += 2048n), deleted: false },
    { key: 'app', value: SECRET, version: (v += 2048n), deleted: false },
  ], 0n)
  try {
    stack = await startStack({
      cwd: ROOT, port: 0, nginx: true,
      env: { ...iso.env, KVARC_AUTH: 'required', KVARC_TOKEN_CACHE_MS: String(TOKEN_CACHE_MS) },
      onOutput: (name, line) => output.push(`[${name}] ${line}`),
    })
  } catch (error) {
    throw new Error(`stack did not start: ${(error as Error).message}\n${output.join('\n')}`)
  }
}, 90_000)

afterAll(async () => {
  await stack?.close()
  await db?.end()
  await iso?.cleanup()
})

const ROUTES: [string, string, string?][] = [
  ['GET', '/api?key=app/k'],
  ['PUT', '/api', '{"key":"app/new","value":"v"}'],
  ['DELETE', '/api?key=app/old'],
  ['GET', '/api/writes?key=app/k&version=1'],
  ['GET', '/api/all?prefix=app/'],
]

describe('every route, with auth required', () => {
  it('no token, malformed, unknown, revoked → 401 (with WWW-Authenticate); without the scope → 403; with it → 2xx', async () => {
    const unknown = `kvarc_0123456789abcdef_${'A'.repeat(43)}`
    for (const [method, path, body] of ROUTES) {
      const label = `${method} ${path}`
      const none = await call(method, path, { body })
      expect(none.status, label).toBe(401)
      expect(none.headers.get('www-authenticate'), label).toBe('Bearer realm="kvarc"')
      expect(none.body.detail, label).toMatch(/authentication required/)
      for (const authorization of ['Bearer not-a-token', 'Basic YTpi', `Bearer ${unknown}`, `Bearer ${tokens.revoked}`]) {
        const bad = await call(method, path, { body, authorization })
        expect(bad.status, `${label} ${authorization}`).toBe(401)
        expect(bad.headers.get('www-authenticate'), label).toBe('Bearer realm="kvarc", error="invalid_token"')
        expect(typeof bad.body.detail, label).toBe('string')
      }
      const wrong = await call(method, path, { body, token: tokens.wrong })
      if (path.startsWith('/api/all')) {
        // A listing is never refused: it holds only what the token may read, here nothing.
        expect(wrong.status, label).toBe(200)
        expect(wrong.body, label).toEqual({ data: [], next: null })
      } else {
        expect(wrong.status, label).toBe(403)
        expect(wrong.body.detail, label).toMatch(/^token "other" may not (read|write) this key$/)
      }
      const right = await call(method, path, { body, token: tokens.right })
      expect(right.status, `${label}: ${right.text}`).toBeLessThan(300)
    }
  })

  it('a listing never reaches outside the scope, whatever the prefix', async () => {
    for (const prefix of ['', 'a', 'app', 'app/', 'secret', 's']) {
      const page = await call('GET', `/api/all?prefix=${encodeURIComponent(prefix)}`, { token: tokens.right })
      expect(page.status).toBe(200)
      expect(page.body.data.every((r: { key: string }) => r.key.startsWith('app/')), prefix).toBe(true)
    }
  })

  it('a revoked token stops working once the hosts\' cached look-up is older than KVARC_TOKEN_CACHE_MS', async () => {
    const { token } = await createToken(db, { name: 'short-lived', rules: [{ prefix: 'app/', access: 'read' }], admin: false })
    // Both hosts (nginx alternates) cache the token.
    for (let i = 0; i < 4; i++) expect((await call('GET', '/api?key=app/k', { token })).status).toBe(200)
    await revokeToken(db, 'short-lived')
    await new Promise(resolve => setTimeout(resolve, TOKEN_CACHE_MS))
    for (let i = 0; i < 4; i++) expect((await call('GET', '/api?key=app/k', { token })).status).toBe(401)
  })
})

describe('fuzz', () => {
  const text = fc.string({ unit: 'binary', maxLength: 24 })
  const keyish = fc.oneof(fc.constantFrom('app/k', 'app/', 'app', 'secret/k', '', 'app/%', '%FF', 'app/\u{1F600}'), text)
  const request = fc.record({
    method: fc.constantFrom('GET', 'PUT', 'DELETE', 'POST', 'PATCH', 'HEAD', 'OPTIONS'),
    path: fc.constantFrom('/api', '/api/all', '/api/writes', '/api/', '/api/all/x', '/nope', '/'),
    query: fc.array(fc.tuple(fc.constantFrom('key', 'prefix', 'version', 'minVersion', 'wait', 'limit', 'cursor', 'x'), keyish), { maxLength: 3 }),
    raw: fc.boolean(),
    auth: fc.constantFrom<'right' | 'wrong' | 'none' | 'junk'>('right', 'right', 'wrong', 'none', 'junk'),
    headers: fc.dictionary(fc.constantFrom('if-match', 'if-none-match', 'prefer', 'content-type', 'x-forwarded-for'), fc.oneof(fc.constantFrom('*', '"1"', 'wait=1', 'wait=99', 'W/"1"', 'application/json'), fc.string({ maxLength: 12 }).map(s => s.replace(/[^\x20-\x7e]/g, ''))), { maxKeys: 2 }),
    body: fc.option(fc.oneof(
      fc.record({ key: keyish, value: text }).map(o => JSON.stringify(o)),
      fc.jsonValue().map(v => JSON.stringify(v)),
      text,
    ), { nil: undefined }),
  })

  it('never a 5xx, never an error without a JSON detail, never data outside the scope', async () => {
    await fc.assert(fc.asyncProperty(request, async r => {
      const query = r.query.map(([k, v]) => `${k}=${r.raw ? v.replace(/[\s#&?]/g, '') : encodeURIComponent(v)}`).join('&')
      let path = r.path + (query ? `?${query}` : '')
      // fetch refuses some raw strings as URLs: those never leave the client, so there is nothing to check.
      try { new URL(stack.url + path) } catch { path = r.path }
      const body = r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body
      const token = r.auth === 'right' ? tokens.right : r.auth === 'wrong' ? tokens.wrong : undefined
      const answer = await call(r.method, path, { token, authorization: r.auth === 'junk' ? 'Bearer junk' : undefined, body, headers: r.headers })
      const label = `${r.method} ${path} ${JSON.stringify(r.headers)} ${JSON.stringify(body)} → ${answer.status} ${answer.text.slice(0, 200)}`
      expect(answer.status, label).toBeLessThan(500)
      expect(answer.text.includes(SECRET), label).toBe(false)
      if (answer.status >= 400 && r.method !== 'HEAD') expect(typeof answer.body?.detail, label).toBe('string')
      if (answer.status === 200 && r.path === '/api/all' && answer.body?.data) {
        expect(answer.body.data.every((row: { key: string }) => row.key.startsWith('app/')), label).toBe(true)
      }
    }), { numRuns: 300 })
  }, 180_000)
})
