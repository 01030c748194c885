/**
 * Poison messages on the real stack: published straight to add_key/del_key
 * (bypassing the API's validation), each must be dead-lettered once with its
 * reason, the valid writes around them must apply, and nothing may loop.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queueStates } from '../../ops/drained.js'
import { takeDeadLetters } from './harness/inspect.js'
import { installRefusals } from '../support/refusals.js'
import { runPoison, runRefusedSweep, type PoisonResult } from './harness/poison.js'
import { startFaultStack, type FaultStack } from './harness/stack.js'

let fs: FaultStack & { output: { text(): string } }

beforeAll(async () => {
  fs = await startFaultStack({ label: 'fpoison' })
}, 60_000)

afterAll(async () => {
  await fs?.close()
}, 60_000)

describe('poison messages', () => {
  let result: PoisonResult

  it('every message that can never apply is dead-lettered once, with its reason; the valid ones around it apply', async () => {
    // Act
    result = await runPoison(fs.target)
    // Assess
    const context = `${JSON.stringify({ ...result, deadLetters: result.deadLetters.map(d => `${d.queue}: ${d.reason}`) }, null, 1)}\n--- stack output ---\n${fs.output.text().slice(-3000)}`
    expect(result.missing, context).toEqual([])
    expect(result.duplicated, context).toEqual([])
    expect(result.withoutReason, context).toEqual([])
    expect(result.unexpected, context).toBe(0)
    expect(result.validNotApplied, context).toEqual([])
    expect(result.poisonRows, context).toEqual([])
    expect(result.deadLetters).toHaveLength(result.injected)
    // The reason names what is wrong, and where it came from.
    for (const letter of result.deadLetters) {
      expect(letter.reason).toMatch(/key|value|version|JSON|UTF-8/)
      expect(letter.sourceQueue).toBe(letter.queue.replace(/\.dlq$/, ''))
    }
    const reasons = new Set(result.deadLetters.map(d => d.reason))
    expect([...reasons].some(r => /NUL/.test(r ?? ''))).toBe(true)
    expect([...reasons].some(r => /larger than/.test(r ?? ''))).toBe(true)
  }, 60_000)

  it('nothing loops: the write queues stay empty and no further dead letter appears', async () => {
    expect(result, 'the first test ran').toBeDefined()
    // Enough for several redelivery rounds (batch window 20 ms, retry backoff from 100 ms) had anything been requeued.
    await new Promise(resolve => setTimeout(resolve, 1500))
    const states = await queueStates([fs.target.addQueue, fs.target.delQueue])
    expect(states.map(s => [s.name, s.messages])).toEqual([[fs.target.addQueue, 0], [fs.target.delQueue, 0]])
    expect(await takeDeadLetters(fs.target.amqpUrl, [fs.target.addQueue, fs.target.delQueue])).toEqual([])
  }, 30_000)

  it('writes PostgreSQL refuses for good, among 1,200 PUTs through the stack: exactly those are dead-lettered, each alone with its reason; every other write is readable', async () => {
    // Prepare: a CHECK constraint and a trigger in this stack's own database refuse some values the API accepts.
    const remove = await installRefusals(fs.target.databaseUrl)
    try {
      // Act
      const result = await runRefusedSweep(fs.target)
      // Assess
      const context = `${JSON.stringify(result, null, 1).slice(0, 3000)}\n--- stack output ---\n${fs.output.text().slice(-3000)}`
      expect(result.refused, context).toBeGreaterThanOrEqual(12)
      expect(result.missing, context).toEqual([])
      expect(result.duplicated, context).toEqual([])
      expect(result.unexpected, context).toEqual([])
      expect(result.withoutReason, context).toEqual([])
      expect(result.notReadable, context).toEqual([])
      expect(result.refusedReadable, context).toEqual([])
      const states = await queueStates([fs.target.addQueue, fs.target.delQueue])
      expect(states.map(s => [s.name, s.messages])).toEqual([[fs.target.addQueue, 0], [fs.target.delQueue, 0]])
    } finally {
      await remove()
    }
  }, 120_000)
})
