import { describe, expect, it } from 'vitest'
import { measureCheck } from './auth-check.js'

describe('the token check timed alone', () => {
  it('times the same calls with auth required and off, batch by batch', async () => {
    // A refused token throws, so finishing means every timed call passed the check; the speed is not asserted.
    const cost = await measureCheck({ calls: 200, batches: 3 })
    expect(cost).toMatchObject({ calls: 200, batches: 3 })
    for (const us of [cost.requiredUs, cost.offUs, cost.costUs]) expect(Number.isFinite(us)).toBe(true)
  })
})
