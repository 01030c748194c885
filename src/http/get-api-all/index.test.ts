/**
 * GET /api/all through the handler: bounded pages in UTF-8 byte order, prefix,
 * limit, cursor/next, and every 422. Real API Gateway v2 events, real PostgreSQL.
 */
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, type Isolated } from '../../../test/support/isolated.js'
import { bodyOf } from '../../../test/support/kv.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../shared/limits.js'
import { openDatabase } from '../../shared/postgres.js'
import { applyWrites, type Write } from '../../shared/store.js'
import { versionAtMillis } from '../../shared/version.js'
import { handler } from './index.js'

let iso: Isolated
let db: pg.Pool
let nextVersion = versionAtMillis(Date.now())

const list = (query = '') => handler(httpEvent('GET', '/api/all', { query }))
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))

async function write(entries: [string, string | null][]): Promise<void> {
  const writes: Write[] = entries.map(([key, value]) => ({ key, value, version: (nextVersion += 1024n), deleted: value === null }))
  await applyWrites(db, writes, 0n)
}

interface Page { data: { key: string, value: string }[], next: string | null }

/** Follows `next` until the last page; bounded so a paging bug cannot loop forever. */
async function walk(params: Record<string, string>): Promise<{ keys: string[], pages: number }> {
  const keys: string[] = []
  let cursor: string | null = null
  for (let pages = 1; pages <= 500; pages++) {
    const query = new URLSearchParams({ ...params, ...(cursor ? { cursor } : {}) }).toString()
    const result = await list(query)
    expect(result.statusCode).toBe(200)
    const page = bodyOf(result) as unknown as Page
    keys.push(...page.data.map(row => row.key))
    if (page.next === null) return { keys, pages }
    cursor = page.next
  }
  throw new Error('paging did not end within 500 pages')
}

beforeAll(async () => {
  iso = await isolate('all')
  Object.assign(process.env, iso.env)
  db = await openDatabase(iso.env.DATABASE_URL!, 2)
})

afterAll(async () => {
  await db?.end()
  await iso?.cleanup()
})

describe('GET /api/all', () => {
  it('an empty store is an empty page with no next', async () => {
    const result = await list()
    expect(result).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
      body: '{"data":[],"next":null}',
    })
  })

  // Code points beyond the BMP sort after U+FFxx in UTF-8 but before them in UTF-16: JavaScript's sort would differ.
  const unicodeKeys = ['B', 'a', 'a b', 'aa', 'é', 'e\u0301', '中文', '😀', 'ｚ', '\u05e9\u05dc\u05d5\u05dd', '"q"', 'back\\slash', 'Z']

  it('lists live keys with their values in UTF-8 byte order, without tombstones', async () => {
    await write(unicodeKeys.map(k => [`u/${k}`, `value of ${k}`]))
    await write([['u/dead', 'x']])
    await write([['u/dead', null]])
    const result = await list('prefix=u%2F')
    expect(result.statusCode).toBe(200)
    const expected = unicodeKeys.map(k => `u/${k}`).sort(byBytes)
    expect(expected.indexOf('u/😀')).toBeGreaterThan(expected.indexOf('u/ｚ'))
    expect(bodyOf(result)).toEqual({ data: expected.map(key => ({ key, value: `value of ${key.slice(2)}` })), next: null })
  })

  it('without parameters answers a bounded page of the default size, with next', async () => {
    await write(Array.from({ length: DEFAULT_PAGE_SIZE + 20 }, (_, i) => [`bulk/${String(i).padStart(4, '0')}`, `v${i}`]))
    const page = bodyOf(await list()) as unknown as Page
    expect(page.data).toHaveLength(DEFAULT_PAGE_SIZE)
    expect(typeof page.next).toBe('string')
  })

  it('walking the pages with limit and cursor returns every live key exactly once, in order', async () => {
    const { keys, pages } = await walk({ limit: '7' })
    const { rows } = await db.query<{ key: string }>('SELECT key FROM kv_store WHERE NOT deleted')
    const expected = rows.map(r => r.key).sort(byBytes)
    expect(keys).toEqual(expected)
    // One extra row is fetched per page, so an exactly full last page already says next=null.
    expect(pages).toBe(Math.ceil(expected.length / 7))
  })

  it('the last full page says next=null when nothing remains', async () => {
    await write([['exact/1', 'a'], ['exact/2', 'b']])
    expect(bodyOf(await list('prefix=exact%2F&limit=2'))).toEqual({ data: [{ key: 'exact/1', value: 'a' }, { key: 'exact/2', value: 'b' }], next: null })
    const first = bodyOf(await list('prefix=exact%2F&limit=1')) as unknown as Page
    expect(first.data).toEqual([{ key: 'exact/1', value: 'a' }])
    expect(first.next).toBe(Buffer.from('exact/1').toString('base64url'))
  })

  it('prefix selects exactly the keys that start with it, also for non-ASCII prefixes', async () => {
    await write([['😀', '1'], ['😀a', '2'], ['😀😀', '3'], ['😁', '4'], ['😀\u{10FFFF}', '5'], ['\u{10FFFF}x', '6'], ['\u{10FFFF}', '7']])
    const emoji = await walk({ prefix: '😀', limit: '2' })
    expect(emoji.keys).toEqual(['😀', '😀a', '😀😀', '😀\u{10FFFF}'])
    const last = await walk({ prefix: '\u{10FFFF}' })
    expect(last.keys).toEqual(['\u{10FFFF}', '\u{10FFFF}x'])
    expect((await walk({ prefix: 'no-such-prefix' })).keys).toEqual([])
  })

  it('a prefix ending just below the surrogate range still bounds correctly', async () => {
    await write([['\ud7ff', '1'], ['\ud7ffz', '2'], ['\ue000', '3'], ['\ud7fe', '4']])
    expect((await walk({ prefix: '\ud7ff' })).keys).toEqual(['\ud7ff', '\ud7ffz'])
  })

  it('prefix and cursor together page within the prefix', async () => {
    const { keys } = await walk({ prefix: 'bulk/00', limit: '3' })
    expect(keys).toEqual(Array.from({ length: 100 }, (_, i) => `bulk/${String(i).padStart(4, '0')}`))
  })

  it('limit accepts 1 and the maximum', async () => {
    expect((bodyOf(await list('limit=1')) as unknown as Page).data).toHaveLength(1)
    const max = bodyOf(await list(`limit=${MAX_PAGE_SIZE}`)) as unknown as Page
    expect(max.next).toBeNull()
    expect(max.data.length).toBeGreaterThan(DEFAULT_PAGE_SIZE)
  })
})

describe('GET /api/all page size in bytes', () => {
  it('cuts a page of large values at the byte budget, never below one row, and pages through all of them', async () => {
    // Prepare: 5 values of 400 KiB: a 1 MiB budget holds two per page
    const big = 'x'.repeat(400 * 1024)
    await write(Array.from({ length: 5 }, (_, i) => [`big:${i}`, big] as [string, string]))
    // Act
    const first = bodyOf(await list('prefix=big%3A&limit=100')) as unknown as Page
    const all = await walk({ prefix: 'big:', limit: '100' })
    // Assess
    expect(first.data.map(r => r.key)).toEqual(['big:0', 'big:1'])
    expect(first.next).not.toBeNull()
    expect(all.keys).toEqual(['big:0', 'big:1', 'big:2', 'big:3', 'big:4'])
    expect(all.pages).toBe(3)
  })

  it('returns a single value larger than the budget on a page of its own', async () => {
    await write([['huge:0', 'y'.repeat(1024 * 1024)], ['huge:1', 'z']])
    const first = bodyOf(await list('prefix=huge%3A')) as unknown as Page
    expect(first.data.map(r => r.key)).toEqual(['huge:0'])
    expect(first.next).not.toBeNull()
  })
})

describe('GET /api/all 422', () => {
  const limitDetail = `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`
  const cursorDetail = 'cursor is not valid: pass the "next" value of the previous page unchanged'
  const cases: [string, string, string][] = [
    ['limit 0', 'limit=0', limitDetail],
    ['limit over the maximum', `limit=${MAX_PAGE_SIZE + 1}`, limitDetail],
    ['negative limit', 'limit=-1', limitDetail],
    ['fractional limit', 'limit=1.5', limitDetail],
    ['non-numeric limit', 'limit=ten', limitDetail],
    ['empty limit', 'limit=', limitDetail],
    ['huge limit', 'limit=99999999999999999999', limitDetail],
    ['cursor with characters outside base64url', 'cursor=a%2Bb', cursorDetail],
    ['empty cursor', 'cursor=', cursorDetail],
    ['non-canonical cursor', 'cursor=YR', cursorDetail],
    ['cursor that is not UTF-8', 'cursor=_w', cursorDetail],
    ['cursor holding a NUL', `cursor=${Buffer.from('a\u0000').toString('base64url')}`, cursorDetail],
    ['unknown parameter', 'foo=bar', 'unknown query parameter "foo": use prefix, limit and cursor'],
    ['key instead of prefix', 'key=a', 'unknown query parameter "key": use prefix, limit and cursor'],
    ['repeated limit', 'limit=1&limit=2', 'query parameter "limit" given more than once'],
    ['NUL in prefix', 'prefix=a%00', 'prefix must be valid Unicode without NUL characters'],
    ['bad percent-encoding in prefix', 'prefix=%FF', 'query parameter "prefix" is not valid percent-encoded UTF-8'],
  ]
  for (const [name, query, detail] of cases) {
    it(name, async () => {
      const result = await list(query)
      expect(result.statusCode).toBe(422)
      expect(result.headers['content-type']).toBe('application/json; charset=utf-8')
      expect(JSON.parse(result.body)).toEqual({ detail })
    })
  }
})
