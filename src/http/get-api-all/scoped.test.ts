/**
 * GET /api/all with auth required: a page holds only keys the token may read,
 * a prefix outside the scope returns nothing from outside it, and paging walks
 * the readable ranges in order without repeating or skipping a key.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createToken } from '../../../ops/tokens.js'
import { httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf } from '../../../test/support/kv.js'
import type { Rule } from '../../shared/auth.js'
import { openDatabase } from '../../shared/postgres.js'
import { applyWrites } from '../../shared/store.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
const KEYS = ['user:1', 'user:1:name', 'user:1:mail', 'user:10', 'user:10:name', 'user:2:name', 'shared/a', 'shared/private/b', 'shared/z', 'zz']

async function tokenFor(name: string, rules: Rule[]): Promise<string> {
  return (await createToken(db, { name, rules, admin: false })).token
}

async function list(token: string | undefined, query = ''): Promise<{ status: number, body: Record<string, any> }> {
  const result = await handler(httpEvent('GET', '/api/all', { query, headers: token ? { authorization: `Bearer ${token}` } : {} }))
  return { status: result.statusCode, body: bodyOf(result) }
}

async function all(token: string, query: string, limit: number): Promise<string[]> {
  const keys: string[] = []
  let cursor: string | null = null
  for (let pages = 0; pages < 50; pages++) {
    const { body } = await list(token, `${query}${query ? '&' : ''}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)
    keys.push(...body.data.map((r: { key: string }) => r.key))
    cursor = body.next
    if (!cursor) return keys
  }
  throw new Error('paging did not end')
}

beforeAll(async () => {
  iso = await isolate('scoped_list')
  Object.assign(process.env, iso.env, { KVARC_AUTH: 'required' })
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
  let v = versionAtMillis(Date.now())
  await applyWrites(db, KEYS.map(key => ({ key, value: `v:${key}`, version: (v += 2048n), deleted: false })), 0n)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('GET /api/all with scopes', () => {
  it('401 without a token', async () => {
    expect((await list(undefined)).status).toBe(401)
  })

  it('lists only readable keys: user:1: is one user, not user:10', async () => {
    const token = await tokenFor('one-user', [{ prefix: 'user:1:', access: 'read' }])
    expect((await list(token)).body).toEqual({ data: [{ key: 'user:1:mail', value: 'v:user:1:mail' }, { key: 'user:1:name', value: 'v:user:1:name' }], next: null })
    // A prefix outside the scope, or wider than it, never widens it.
    expect((await list(token, 'prefix=user:10')).body).toEqual({ data: [], next: null })
    expect((await list(token, 'prefix=user:')).body.data.map((r: { key: string }) => r.key)).toEqual(['user:1:mail', 'user:1:name'])
  })

  it('a deny inside a readable prefix is skipped, and paging walks the ranges in order', async () => {
    const token = await tokenFor('shared-reader', [{ prefix: 'shared/', access: 'read' }, { prefix: 'shared/private/', access: 'deny' }, { prefix: 'user:', access: 'readwrite' }, { prefix: 'user:2', access: 'write' }])
    // Byte order: ':' (0x3a) sorts after '0' (0x30), so user:10 comes before user:1:mail.
    const expected = ['shared/a', 'shared/z', 'user:1', 'user:10', 'user:10:name', 'user:1:mail', 'user:1:name']
    for (const limit of [1, 2, 3, 100]) expect(await all(token, '', limit), `limit ${limit}`).toEqual(expected)
  })

  it('a write-only token lists nothing', async () => {
    const token = await tokenFor('writer', [{ prefix: '', access: 'write' }])
    expect((await list(token)).body).toEqual({ data: [], next: null })
  })
})
