/**
 * Fault injection, fast subset: everything stops gracefully at once (nginx
 * SIGQUIT, the HTTP hosts and the consumer host SIGTERM), under load, and
 * starts again. In-flight requests are drained, in-flight batches finished and
 * acknowledged; requests while nothing listens are refused (unknown outcome),
 * and nothing acknowledged is lost.
 */
import { afterAll, beforeAll, describe, it } from 'vitest'
import { runAndCheck } from './harness/check.js'
import { gracefulRestartAll } from './harness/faults.js'
import { FAST, faultTable, type ScenarioResult } from './harness/scenario.js'
import { startFaultStack, type FaultStack } from './harness/stack.js'

let fs: FaultStack & { output: { text(): string } }
const results: ScenarioResult[] = []

beforeAll(async () => {
  fs = await startFaultStack({ label: 'fgrace' })
}, 60_000)

afterAll(async () => {
  if (results.length) console.log(`\nfault table (fast subset, graceful restart)\n${faultTable(results)}\n`)
  await fs?.close()
}, 60_000)

describe('graceful stop of the whole stack under load (fast subset)', () => {
  it('SIGTERM of everything and start again: drained requests and finished batches, nothing lost', async () => {
    await runAndCheck(fs, gracefulRestartAll(fs), FAST, results)
  }, 120_000)
})
