/** Parsing a batch: every op checked, the first bad one named by its index. */
import { describe, expect, it } from 'vitest'
import { MAX_BATCH_OPS, parseBatch } from './batch.js'

const put = (key: string, extra: Record<string, unknown> = {}) => ({ op: 'put', key, value: 'v', ...extra })

describe('parseBatch', () => {
  it('reads puts, deletes, conditions and lives, atomic or not', () => {
    const now = Math.floor(Date.now() / 1000)
    expect(parseBatch({ ops: [put('a', { ttl: 5, ifMatch: '"7"' }), { op: 'delete', key: 'b', ifNoneMatch: '*' }, put('c', { expiresAt: now + 60, ifMatch: '*' })], atomic: true })).toEqual({
      atomic: true,
      ops: [
        { index: 0, key: 'a', value: 'v', condition: { kind: 'match', version: 7n }, life: { ttl: 5 } },
        { index: 1, key: 'b', value: null, condition: { kind: 'absent' } },
        { index: 2, key: 'c', value: 'v', condition: { kind: 'present' }, life: { at: now + 60 } },
      ],
    })
    expect(parseBatch({ ops: [put('a')] }).atomic).toBe(false)
  })

  it('refuses 129 ops, a key twice, and names the first bad op', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ops: Array.from({ length: MAX_BATCH_OPS + 1 }, (_, i) => put(`k${i}`)) }, /at most 128 ops, got 129/],
      [{ ops: [put('a'), put('b'), put('a')] }, /^ops\[2\]: key "a" is already written by ops\[0\]/],
      [{ ops: [put('a'), put('')] }, /^ops\[1\]: key must not be empty$/],
      [{ ops: [put('a'), { op: 'put', key: 'b', value: 5 }] }, /^ops\[1\]: value must be a string, got number$/],
      [{ ops: [{ op: 'upsert', key: 'a' }] }, /^ops\[0\]: op must be "put" or "delete"$/],
      [{ ops: [{ op: 'delete', key: 'a', value: 'x' }] }, /^ops\[0\]: a delete takes no value/],
      [{ ops: [put('a', { ttl: 0 })] }, /^ops\[0\]: ttl must be/],
      [{ ops: [put('a', { ifMatch: 'nope' })] }, /^ops\[0\]: ifMatch must be/],
      [{ ops: [put('a', { extra: 1 })] }, /^ops\[0\]: unknown field "extra"/],
      [{ ops: [] }, /non-empty array/],
      [{ ops: [put('a')], atomic: 'yes' }, /atomic must be true or false/],
      [{ ops: [put('a')], more: 1 }, /unknown field "more"/],
    ]
    for (const [body, detail] of cases) expect(() => parseBatch(body), JSON.stringify(body).slice(0, 80)).toThrow(detail)
  })
})
