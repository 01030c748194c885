import { describe, expect, it } from 'vitest'
import { errorThrottled } from './log.js'

describe('errorThrottled', () => {
  it('logs the first error for a key, holds back repeats within the interval, and logs again after it', () => {
    process.env.LOG_LEVEL = 'silent'
    const t0 = 1_000_000
    expect(errorThrottled('db down', {}, 'db down', 10_000, t0)).toBe(true)
    expect(errorThrottled('db down', {}, 'db down', 10_000, t0 + 1)).toBe(false)
    expect(errorThrottled('db down', {}, 'db down', 10_000, t0 + 9_999)).toBe(false)
    expect(errorThrottled('queue down', {}, 'queue down', 10_000, t0 + 2)).toBe(true)
    expect(errorThrottled('db down', {}, 'db down', 10_000, t0 + 10_000)).toBe(true)
  })
})
