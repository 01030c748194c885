/**
 * The queue message format: what the API encodes, the consumers decode to the
 * same write; anything else is a PoisonMessageError with a reason.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { PoisonMessageError } from './errors.js'
import { decodeMessage, decodeWrites, encodeWrite, encodeWrites } from './messages.js'

const validText = (minLength: number) => fc.string({ unit: 'binary', minLength, maxLength: 40 }).filter(s => !s.includes('\u0000'))
const validVersion = fc.bigInt({ min: 1n, max: (1n << 63n) - 1n })

describe('encodeWrite(s) / decodeWrites', () => {
  it('round-trip every valid PUT and DELETE exactly', () => {
    fc.assert(fc.property(validText(1), validText(0), validVersion, (key, value, version) => {
      expect(decodeWrites(encodeWrite(key, value, version), 'put')).toEqual([{ key, value, version, deleted: false }])
      expect(decodeWrites(encodeWrite(key, null, version), 'delete')).toEqual([{ key, value: null, version, deleted: true }])
    }))
  })

  it('carry the version as a decimal string (JSON numbers lose precision beyond 2^53)', () => {
    const body = JSON.parse(encodeWrite('k', 'v', (1n << 62n) + 1n).toString())
    expect(body).toEqual({ key: 'k', value: 'v', version: '4611686018427387905' })
  })

  it('round-trip conditional writes, which carry their version inside the condition', () => {
    const conditions = fc.oneof(
      fc.constant({ kind: 'absent' as const }),
      fc.constant({ kind: 'present' as const }),
      fc.bigInt({ min: 1n, max: (1n << 62n) }).map(version => ({ kind: 'match' as const, version })),
    )
    fc.assert(fc.property(validText(1), validText(0), fc.bigInt({ min: (1n << 62n) + 1n, max: (1n << 63n) - 1n }), conditions, (key, value, version, condition) => {
      const body = encodeWrite(key, value, version, condition)
      expect(JSON.parse(body.toString()).version).toBeUndefined()
      expect(decodeWrites(body, 'put')).toEqual([{ key, value, version, deleted: false, condition }])
      expect(decodeWrites(encodeWrite(key, null, version, condition), 'delete')).toEqual([{ key, value: null, version, deleted: true, condition }])
    }))
  })

  it('a conditional write that is ambiguous or names a version not older than its own is poison', () => {
    const poison = (body: unknown) => () => decodeWrites(Buffer.from(JSON.stringify(body)), 'put')
    expect(poison({ key: 'k', value: 'v', version: '9', conditional: { version: '9', ifMatch: '5' } })).toThrow(/carries its version inside "conditional" only/)
    expect(poison({ key: 'k', value: 'v', conditional: { version: '9', ifMatch: '9' } })).toThrow(/must be greater than the version it names/)
    expect(poison({ key: 'k', value: 'v', conditional: { version: '9', ifMatch: '5', ifNoneMatch: '*' } })).toThrow(/one condition/)
    expect(poison({ key: 'k', value: 'v', conditional: { version: '9', ifNoneMatch: '5' } })).toThrow(/ifNoneMatch must be "\*"/)
    expect(poison({ key: 'k', value: 'v', conditional: { ifMatch: '5' } })).toThrow(/version must be a decimal string/)
    expect(poison({ key: 'k', value: 'v', conditional: 'yes' })).toThrow(/"conditional" is not a JSON object/)
  })

  it('a PUT message without a value is poison on add_key', () => {
    expect(() => decodeWrites(encodeWrite('k', null, 5n), 'put')).toThrow(PoisonMessageError)
  })

  it('carry several writes as one array message, in order; a lone write keeps the one-object format', () => {
    fc.assert(fc.property(fc.array(fc.tuple(validText(1), validText(0), validVersion), { minLength: 1, maxLength: 8 }), entries => {
      const writes = entries.map(([key, value, version]) => ({ key, value, version }))
      const body = encodeWrites(writes)
      expect(Array.isArray(JSON.parse(body.toString()))).toBe(writes.length > 1)
      expect(decodeWrites(body, 'put')).toEqual(writes.map(w => ({ ...w, deleted: false })))
    }))
    expect(() => encodeWrites([])).toThrow(RangeError)
  })

  it('an array message with any write that can never apply is poison as a whole, saying which write', () => {
    const good = { key: 'k', value: 'v', version: '7' }
    expect(() => decodeWrites(Buffer.from('[]'), 'put')).toThrow(/empty array/)
    expect(() => decodeWrites(Buffer.from(JSON.stringify([good, { key: '', value: 'v', version: '8' }])), 'put')).toThrow(/^write 2 of 2: key must not be empty$/)
    expect(() => decodeWrites(Buffer.from(JSON.stringify([good, 'k'])), 'put')).toThrow(/^write 2 of 2 is not a JSON object$/)
    expect(() => decodeWrites(Buffer.from(JSON.stringify([good, [good]])), 'put')).toThrow(PoisonMessageError)
    expect(() => decodeWrites(Buffer.from(JSON.stringify([{ key: 'k', version: '9' }])), 'put')).toThrow(/^write 1 of 1: value must be a string/)
  })

  it('never throws anything but PoisonMessageError on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom('put' as const, 'delete' as const), (bytes, kind) => {
      try {
        decodeWrites(bytes, kind)
      } catch (error) {
        expect(error).toBeInstanceOf(PoisonMessageError)
        expect((error as Error).message.length).toBeGreaterThan(0)
      }
    }))
  })
})

describe('decodeMessage', () => {
  it('an array with bad entries: the valid writes decode, each bad entry is poison alone with its own body', () => {
    const good = { key: 'k', value: 'v', version: '7' }
    const bad = { key: '', value: 'v', version: '8' }
    const { writes, poison } = decodeMessage(Buffer.from(JSON.stringify([good, bad, 'x'])), 'put')
    expect(writes).toEqual([{ key: 'k', value: 'v', version: 7n, deleted: false }])
    expect(poison.map(p => [p.body.toString(), p.reason])).toEqual([
      [JSON.stringify(bad), 'write 2 of 3: key must not be empty'],
      ['"x"', 'write 3 of 3 is not a JSON object'],
    ])
  })

  it('a body that is not a JSON object or array is poison whole, with its original bytes', () => {
    for (const body of [Buffer.from([0xff, 0xfe]), Buffer.from('nope'), Buffer.from('[]'), Buffer.from('null')]) {
      const { writes, poison } = decodeMessage(body, 'delete')
      expect(writes).toEqual([])
      expect(poison).toHaveLength(1)
      expect(poison[0]!.body.equals(body)).toBe(true)
    }
  })
})
