/**
 * Scopes (longest prefix, deny at equal length, the ranges a listing walks),
 * tokens against a real PostgreSQL (only hashes stored, wrong secrets, revoked
 * tokens stopping within the cache time), and the 401/403 answers.
 */
import fc from 'fast-check'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createToken, revokeToken } from '../../ops/tokens.js'
import { httpEvent, isolate, type Isolated } from '../../test/support/isolated.js'
import { allows, authenticate, EVERYONE, readableRanges, requireAccess, TokenVerifier, type Rule } from './auth.js'
import { openDatabase } from './postgres.js'

let iso: Isolated
let db: pg.Pool

beforeAll(async () => {
  iso = await isolate('auth')
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('scopes', () => {
  it('a prefix is a plain string prefix: user:1 matches user:10, user:1: does not', () => {
    const narrow: Rule[] = [{ prefix: 'user:1:', access: 'read' }]
    expect(allows(narrow, 'user:1:name', 'read')).toBe(true)
    expect(allows(narrow, 'user:10', 'read')).toBe(false)
    expect(allows(narrow, 'user:1', 'read')).toBe(false)
    const wide: Rule[] = [{ prefix: 'user:1', access: 'read' }]
    expect(allows(wide, 'user:1', 'read')).toBe(true)
    expect(allows(wide, 'user:10', 'read')).toBe(true)
    expect(allows(wide, 'user:2', 'read')).toBe(false)
  })

  it('the longest matching prefix wins, deny wins at equal length, and nothing matching means no access', () => {
    const rules: Rule[] = [
      { prefix: '', access: 'read' },
      { prefix: 'app/', access: 'readwrite' },
      { prefix: 'app/secret/', access: 'deny' },
      { prefix: 'app/secret/public', access: 'read' },
      { prefix: 'x', access: 'write' },
      { prefix: 'x', access: 'deny' },
    ]
    expect(allows(rules, 'other', 'read')).toBe(true)
    expect(allows(rules, 'other', 'write')).toBe(false)
    expect(allows(rules, 'app/a', 'write')).toBe(true)
    expect(allows(rules, 'app/secret/k', 'read')).toBe(false)
    expect(allows(rules, 'app/secret/public/k', 'read')).toBe(true)
    expect(allows(rules, 'app/secret/public/k', 'write')).toBe(false)
    expect(allows(rules, 'xy', 'write')).toBe(false)
    expect(allows([], 'anything', 'read')).toBe(false)
  })

  it('readable ranges hold exactly the keys within the prefix the rules let the token read', () => {
    const alphabet = ['a', 'b', 'ab', 'ba', 'a\u00ff', '\u{1F600}', 'aa']
    const text = fc.array(fc.constantFrom(...alphabet), { maxLength: 3 }).map(parts => parts.join(''))
    const rule = fc.record({ prefix: text, access: fc.constantFrom('read', 'write', 'readwrite', 'deny' as const) })
    fc.assert(fc.property(fc.array(rule, { maxLength: 5 }), text, fc.array(text, { minLength: 1, maxLength: 30 }), (rules, prefix, keys) => {
      const ranges = readableRanges(rules as Rule[], prefix)
      for (const key of keys) {
        const inRanges = ranges.some(r => key >= r.from && (r.to === null || key < r.to))
        expect(inRanges, `${JSON.stringify(key)} in ${JSON.stringify(ranges)} for ${JSON.stringify(rules)}`).toBe(key.startsWith(prefix) && allows(rules as Rule[], key, 'read'))
      }
    }))
  })
})

describe('tokens', () => {
  it('verifies a created token; stores only its hash; refuses a wrong secret, an unknown id and garbage', async () => {
    const { token, id } = await createToken(db, { name: 'reader', rules: [{ prefix: 'a/', access: 'read' }], admin: false })
    expect(token).toMatch(/^kvarc_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/)
    const stored = (await db.query('SELECT * FROM kv_tokens WHERE id = $1', [id])).rows[0]
    expect(JSON.stringify(stored)).not.toContain(token.split('_')[2])
    const verifier = new TokenVerifier(async () => db)
    expect(await verifier.verify(token)).toEqual({ name: 'reader', rules: [{ prefix: 'a/', access: 'read' }], admin: false })
    const wrongSecret = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A')
    expect(await verifier.verify(wrongSecret)).toBeUndefined()
    expect(await verifier.verify(`kvarc_0123456789abcdef_${'A'.repeat(43)}`)).toBeUndefined()
    expect(await verifier.verify('not-a-token')).toBeUndefined()
  })

  it('a revoked token stops working once the cached look-up is older than the cache time, not before', async () => {
    const { token } = await createToken(db, { name: 'soon-gone', rules: [{ prefix: '', access: 'read' }], admin: false })
    let now = 1_000_000
    const verifier = new TokenVerifier(async () => db, 5000, () => now)
    expect(await verifier.verify(token)).toBeDefined()
    expect(await revokeToken(db, 'soon-gone')).toBe(true)
    now += 4999
    expect(await verifier.verify(token)).toBeDefined()
    now += 1
    expect(await verifier.verify(token)).toBeUndefined()
    // The name is free again; the old token stays dead.
    const { token: again } = await createToken(db, { name: 'soon-gone', rules: [], admin: true })
    now += 5000
    expect(await verifier.verify(token)).toBeUndefined()
    expect(await verifier.verify(again)).toMatchObject({ name: 'soon-gone', admin: true })
  })
})

describe('authenticate / requireAccess', () => {
  const deps = () => ({ mode: 'required' as const, tokens: new TokenVerifier(async () => db) })
  const event = (authorization?: string) => httpEvent('GET', '/api', authorization === undefined ? {} : { headers: { authorization } })

  it('401 without a token (no error code, RFC 6750 3.1) and with a bad one (invalid_token)', async () => {
    await expect(authenticate(deps(), event())).rejects.toMatchObject({ statusCode: 401, headers: { 'www-authenticate': 'Bearer realm="kvarc"' } })
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', `Bearer kvarc_0123456789abcdef_${'A'.repeat(43)}`]) {
      await expect(authenticate(deps(), event(header)), header).rejects.toMatchObject({ statusCode: 401, headers: { 'www-authenticate': 'Bearer realm="kvarc", error="invalid_token"' } })
    }
  })

  it('a valid token passes; its scope decides with 403', async () => {
    const { token } = await createToken(db, { name: 'writer', rules: [{ prefix: 'w/', access: 'write' }], admin: false })
    const principal = await authenticate(deps(), event(`bearer ${token}`))
    expect(() => requireAccess(principal, 'w/k', 'write')).not.toThrow()
    expect(() => requireAccess(principal, 'w/k', 'read')).toThrow(expect.objectContaining({ statusCode: 403, message: 'token "writer" may not read this key' }))
  })

  it('auth off lets everything through', async () => {
    expect(await authenticate({ mode: 'off', tokens: new TokenVerifier(async () => { throw new Error('never asked') }) }, event())).toBe(EVERYONE)
  })
})
