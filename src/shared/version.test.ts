/**
 * The version clock: strictly increasing per writer whatever the wall clock
 * does, unique across writers, ordered by acceptance time, and always a valid
 * 63-bit decimal that the store, the queue messages and the cache accept.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isConditional, MAX_WRITER_ID, parseVersion, VersionClock, versionAtMillis, versionMillis } from './version.js'

const NOW = Date.UTC(2026, 10, 27)

/** A clock fed from a list of wall-clock readings (jumps, repeats and steps back included). */
function scripted(readings: number[]) {
  let i = 0
  return () => readings[Math.min(i++, readings.length - 1)]!
}

describe('VersionClock', () => {
  it('is strictly increasing per writer, whatever the wall clock does', () => {
    fc.assert(fc.property(
      fc.array(fc.integer({ min: -5000, max: 5000 }), { minLength: 1, maxLength: 300 }),
      fc.integer({ min: 0, max: MAX_WRITER_ID }),
      (steps, writer) => {
        let t = NOW
        const clock = new VersionClock(writer, scripted(steps.map(step => (t += step))))
        let last = -1n
        for (let i = 0; i < steps.length; i++) {
          const v = clock.next()
          expect(v > last).toBe(true)
          expect(Number(v & BigInt(MAX_WRITER_ID))).toBe(writer)
          last = v
        }
      },
    ))
  })

  it('never repeats within one millisecond, beyond the counter (1024 per ms borrow the next ms)', () => {
    const clock = new VersionClock(3, () => NOW)
    const seen = new Set<bigint>()
    let last = 0n
    for (let i = 0; i < 5000; i++) {
      const v = clock.next()
      expect(v > last).toBe(true)
      seen.add(v)
      last = v
    }
    expect(seen.size).toBe(5000)
    expect(versionMillis(last)).toBe(NOW + 4) // 5000 versions = 5 ms of counter
  })

  it('is unique across writers reading the same clock', () => {
    const versions = new Set<bigint>()
    const clocks = [0, 1, 2, MAX_WRITER_ID].map(id => new VersionClock(id, () => NOW))
    for (let i = 0; i < 100; i++) for (const clock of clocks) versions.add(clock.next())
    expect(versions.size).toBe(400)
  })

  it('orders writes by acceptance time across writers: a later millisecond always wins', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: MAX_WRITER_ID }), fc.integer({ min: 0, max: MAX_WRITER_ID }), fc.integer({ min: 1, max: 1023 }), (a, b, burst) => {
      const early = new VersionClock(a, () => NOW)
      let v = 0n
      for (let i = 0; i < burst; i++) v = early.next()
      const late = new VersionClock(b, () => NOW + 1).next()
      expect(late > v).toBe(true)
    }))
  })

  it('carries the wall-clock millisecond, and versionAtMillis is the smallest version of that millisecond', () => {
    const v = new VersionClock(MAX_WRITER_ID, () => NOW).next()
    expect(versionMillis(v)).toBe(NOW)
    expect(versionAtMillis(NOW) <= v).toBe(true)
    expect(versionAtMillis(NOW + 1) > v).toBe(true)
    expect(versionAtMillis(-5)).toBe(0n)
  })

  it('marks conditional writes in the version, and stays increasing across both kinds', () => {
    fc.assert(fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 3000 }), fc.integer({ min: 0, max: MAX_WRITER_ID }), (kinds, writer) => {
      const clock = new VersionClock(writer, () => NOW)
      let last = 0n
      for (const conditional of kinds) {
        const v = clock.next({ conditional })
        expect(v > last).toBe(true)
        expect(isConditional(v)).toBe(conditional)
        expect(Number(v & BigInt(MAX_WRITER_ID))).toBe(writer)
        last = v
      }
    }))
  })

  it('moves past a version from a clock that runs ahead (after)', () => {
    const ahead = new VersionClock(1, () => NOW + 5000).next()
    const behind = new VersionClock(2, () => NOW)
    const v = behind.next({ after: ahead })
    expect(v > ahead).toBe(true)
    expect(behind.next() > v).toBe(true)
    // A version from the past changes nothing.
    expect(versionMillis(new VersionClock(3, () => NOW).next({ after: 5n }))).toBe(NOW)
  })

  it('rejects writer ids outside 0..1023', () => {
    for (const id of [-1, MAX_WRITER_ID + 1, 1.5, Number.NaN]) expect(() => new VersionClock(id)).toThrow(RangeError)
  })

  it('issues versions that parse back and fit a signed 64-bit integer', () => {
    const v = new VersionClock(7).next()
    expect(parseVersion(v.toString())).toBe(v)
    expect(v < 1n << 63n).toBe(true)
  })
})

describe('parseVersion', () => {
  it('accepts positive decimal 63-bit integers only', () => {
    expect(parseVersion('1')).toBe(1n)
    expect(parseVersion('9223372036854775807')).toBe((1n << 63n) - 1n)
    for (const bad of ['0', '-1', '01', '1.0', '1e3', ' 1', '1 ', '', '9223372036854775808', '99999999999999999999', '0x1f', '١٢']) {
      expect(parseVersion(bad), bad).toBeUndefined()
    }
    for (const bad of [1, 1n, null, undefined, ['1'], { v: '1' }]) expect(parseVersion(bad)).toBeUndefined()
  })
})
