/**
 * Authentication under `arc sandbox` with KVARC_AUTH=required: the same check
 * as on the warm platform, because it lives in the functions' shared code.
 * A handful of requests: sandbox starts a process per request.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createToken, revokeToken } from '../../ops/tokens.js'
import { openDatabase } from '../../src/shared/postgres.js'
import { isolate, type Isolated } from '../support/isolated.js'
import { checkResponse } from '../support/openapi.js'
import { startSandbox, type Sandbox } from './sandbox.js'

let iso: Isolated
let sandbox: Sandbox
let db: pg.Pool
let right: string
let wrong: string
let revoked: string

async function call(method: string, path: string, token?: string, body?: string) {
  const response = await fetch(sandbox.url + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body,
    signal: AbortSignal.timeout(30_000),
  })
  const text = await response.text()
  const parsed = JSON.parse(text) as Record<string, any>
  checkResponse(method, path, { status: response.status, headers: response.headers, body: parsed, text })
  return { status: response.status, body: parsed, headers: response.headers }
}

beforeAll(async () => {
  iso = await isolate('sbx_auth')
  db = await openDatabase(iso.env.DATABASE_URL!, 1)
  right = (await createToken(db, { name: 'app', rules: [{ prefix: 'app/', access: 'readwrite' }], admin: false })).token
  wrong = (await createToken(db, { name: 'reader', rules: [{ prefix: 'app/', access: 'read' }], admin: false })).token
  revoked = (await createToken(db, { name: 'gone', rules: [{ prefix: '', access: 'readwrite' }], admin: false })).token
  await revokeToken(db, 'gone')
  sandbox = await startSandbox({ ...iso.env, KVARC_AUTH: 'required' })
}, 120_000)

afterAll(async () => {
  await sandbox?.stop()
  await db?.end()
  await iso?.cleanup()
})

describe('auth under arc sandbox', () => {
  it('401 without or with a revoked token, 403 without the scope, 200 with it', async () => {
    const none = await call('GET', '/api?key=app/k')
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="kvarc"')
    expect((await call('PUT', '/api', revoked, '{"key":"app/k","value":"v"}')).status).toBe(401)
    const forbidden = await call('PUT', '/api', wrong, '{"key":"app/k","value":"v"}')
    expect(forbidden).toMatchObject({ status: 403, body: { detail: 'token "reader" may not write this key' } })
    const put = await call('PUT', '/api', right, '{"key":"app/k","value":"v"}')
    expect(put).toMatchObject({ status: 200, body: { status: 'queued' } })
    expect((await call('GET', `/api/writes?key=app/k&version=${put.body.version}`, wrong)).status).toBe(200)
    expect((await call('GET', '/api/all?prefix=other', right)).body).toEqual({ data: [], next: null })
  })
})
