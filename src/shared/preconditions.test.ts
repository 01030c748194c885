/** Parsing of If-Match, If-None-Match, Prefer: wait and the wait / version parameters. */
import { describe, expect, it } from 'vitest'
import { httpEvent } from '../../test/support/isolated.js'
import { MAX_WAIT_SECONDS, parseCondition, parsePreferWait, parseVersionParam, parseWaitParam, receiptPath } from './preconditions.js'

const withHeaders = (headers: Record<string, string>) => httpEvent('PUT', '/api', { headers })

describe('parseCondition', () => {
  it('reads a quoted or bare version, *, and If-None-Match: *', () => {
    expect(parseCondition(withHeaders({}))).toBeUndefined()
    expect(parseCondition(withHeaders({ 'if-match': '"42"' }))).toEqual({ kind: 'match', version: 42n })
    expect(parseCondition(withHeaders({ 'if-match': ' 42 ' }))).toEqual({ kind: 'match', version: 42n })
    expect(parseCondition(withHeaders({ 'if-match': '*' }))).toEqual({ kind: 'present' })
    expect(parseCondition(withHeaders({ 'if-none-match': '*' }))).toEqual({ kind: 'absent' })
  })

  it('refuses what it cannot honour exactly', () => {
    for (const headers of [{ 'if-match': '"1","2"' }, { 'if-match': 'W/"1"' }, { 'if-match': '"0"' }, { 'if-match': '""' }, { 'if-none-match': '"1"' }, { 'if-match': '"1"', 'if-none-match': '*' }] as Record<string, string>[]) {
      expect(() => parseCondition(withHeaders(headers)), JSON.stringify(headers)).toThrow(expect.objectContaining({ statusCode: 422 }))
    }
  })
})

describe('parsePreferWait', () => {
  it('finds wait among other preferences, shortens it to the limit, ignores what it does not know', () => {
    expect(parsePreferWait(withHeaders({}))).toBeUndefined()
    expect(parsePreferWait(withHeaders({ prefer: 'return=minimal' }))).toBeUndefined()
    expect(parsePreferWait(withHeaders({ prefer: 'wait=5' }))).toBe(5)
    expect(parsePreferWait(withHeaders({ prefer: 'respond-async, Wait = 3' }))).toBe(3)
    expect(parsePreferWait(withHeaders({ prefer: 'wait="2"' }))).toBe(2)
    expect(parsePreferWait(withHeaders({ prefer: 'wait=0' }))).toBe(0)
    expect(parsePreferWait(withHeaders({ prefer: 'wait=600' }))).toBe(MAX_WAIT_SECONDS)
    for (const prefer of ['wait=', 'wait=-1', 'wait=1.5', 'wait=abc']) {
      expect(() => parsePreferWait(withHeaders({ prefer })), prefer).toThrow(expect.objectContaining({ statusCode: 422 }))
    }
  })
})

describe('query parameters', () => {
  it('wait is 0 to 10 whole seconds, 0 when absent', () => {
    expect(parseWaitParam(new Map())).toBe(0)
    expect(parseWaitParam(new Map([['wait', '10']]))).toBe(10)
    for (const wait of ['11', '-1', '1.0', '', 'x']) expect(() => parseWaitParam(new Map([['wait', wait]])), wait).toThrow(expect.objectContaining({ statusCode: 422 }))
  })

  it('versions are required or optional, and must be versions', () => {
    expect(parseVersionParam(new Map([['version', '7']]), 'version', true)).toBe(7n)
    expect(parseVersionParam(new Map(), 'minVersion', false)).toBeUndefined()
    expect(() => parseVersionParam(new Map(), 'version', true)).toThrow(/"version" is required/)
    expect(() => parseVersionParam(new Map([['minVersion', '9223372036854775808']]), 'minVersion', false)).toThrow(/must be a version/)
  })

  it('a receipt path encodes the key', () => {
    expect(receiptPath('a b/ç?&', '12')).toBe('/api/writes?key=a%20b%2F%C3%A7%3F%26&version=12')
  })
})
