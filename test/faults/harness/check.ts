/**
 * The assertions every fault run must pass, in one place for all the suites:
 * the fault ran and was undone, nothing acknowledged lost, no resurrection, no
 * mismatch, no stale cache entry, no rejection, no dead letter, the system
 * recovered, and no request hung. The failure message carries the verifier's
 * findings and the stack's last output lines.
 */
import { expect } from 'vitest'
import { runScenario, type Fault, type ScenarioOptions, type ScenarioResult } from './scenario.js'
import type { FaultStack } from './stack.js'

export async function runAndCheck(fs: FaultStack & { output: { text(): string } }, fault: Fault, options: ScenarioOptions, results: ScenarioResult[]): Promise<ScenarioResult> {
  let result: ScenarioResult
  try {
    result = await runScenario(fs.target, fault, options)
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- stack output ---\n${fs.output.text().slice(-4000)}`, { cause: error })
  }
  results.push(result)
  const v = result.verdict
  const context = `${fault.name}: ${JSON.stringify({ ...v, problems: undefined, refusals: result.refusals, reads: result.reads, faultError: result.faultError })}\n${v.problems.join('\n')}\n--- stack output ---\n${fs.output.text().slice(-3000)}`
  expect(result.faultError, context).toBeUndefined()
  expect(v.acknowledged, context).toBeGreaterThanOrEqual(options.warmWrites)
  expect({ lost: v.lost, resurrections: v.resurrections, mismatches: v.mismatches, reordered: v.reordered, staleCache: v.staleCache, rejected: v.rejected }, context)
    .toEqual({ lost: 0, resurrections: 0, mismatches: 0, reordered: 0, staleCache: 0, rejected: 0 })
  expect(result.deadLetters, context).toBe(0)
  expect(Number.isFinite(result.recoverMs), `${context}\nnever recovered`).toBe(true)
  // No request may hang: every write got an answer before the client's deadline.
  expect(Object.keys(result.refusals.statuses).filter(s => s.startsWith('no answer')), context).toEqual([])
  return result
}
