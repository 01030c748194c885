/**
 * Fault injection, fast subset, part two: backing-service outages for this
 * stack alone. Its hosts reach PostgreSQL, Redis and RabbitMQ through TCP fault
 * proxies (harness/proxy.ts), so an outage resets this stack's connections and
 * refuses (or swallows) new ones without disturbing any other test on the
 * machine. The full suite restarts the real services instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { proxyOutage } from './harness/faults.js'
import { FAST, faultTable, improperRefusals, runScenario, type Fault, type ScenarioResult } from './harness/scenario.js'
import { startFaultStack, type FaultStack } from './harness/stack.js'

let fs: FaultStack & { output: { text(): string } }
const results: ScenarioResult[] = []

beforeAll(async () => {
  fs = await startFaultStack({ label: 'fout', proxies: true })
}, 60_000)

afterAll(async () => {
  if (results.length) console.log(`\nfault table (fast subset, outages through fault proxies)\n${faultTable(results)}\n`)
  await fs?.close()
}, 60_000)

async function check(fault: Fault): Promise<ScenarioResult> {
  let result: ScenarioResult
  try {
    result = await runScenario(fs.target, fault, FAST)
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- stack output ---\n${fs.output.text().slice(-4000)}`, { cause: error })
  }
  results.push(result)
  const v = result.verdict
  const context = `${fault.name}: ${JSON.stringify({ ...v, problems: undefined, refusals: result.refusals, reads: result.reads, faultError: result.faultError })}\n${v.problems.join('\n')}\n--- stack output ---\n${fs.output.text().slice(-3000)}`
  expect(result.faultError, context).toBeUndefined()
  expect({ lost: v.lost, resurrections: v.resurrections, mismatches: v.mismatches, staleCache: v.staleCache, rejected: v.rejected }, context)
    .toEqual({ lost: 0, resurrections: 0, mismatches: 0, staleCache: 0, rejected: 0 })
  expect(result.deadLetters, context).toBe(0)
  expect(Number.isFinite(result.recoverMs), `${context}\nnever recovered`).toBe(true)
  expect(Object.keys(result.refusals.statuses).filter(s => s.startsWith('no answer')), context).toEqual([])
  return result
}

/** While the broker is away, a write is refused, never falsely queued: 503 with Retry-After, each one. */
function expectOnly503WithRetryAfter(result: ScenarioResult): void {
  expect(result.failedWrites, 'the outage must have been felt by writers').toBeGreaterThan(0)
  expect(improperRefusals(result)).toEqual([])
}

describe('backing-service outages of one stack under load (fast subset)', () => {
  it('RabbitMQ unreachable: PUT/DELETE answer 503 + Retry-After at once, hosts and consumer reconnect, nothing lost', async () => {
    expectOnly503WithRetryAfter(await check(proxyOutage(fs, 'rabbitmq', 'down')))
  }, 120_000)

  it('RabbitMQ black hole (connections hang): 503 + Retry-After after the confirm timeout, no request hangs, nothing lost', async () => {
    expectOnly503WithRetryAfter(await check(proxyOutage(fs, 'rabbitmq', 'hang')))
  }, 120_000)

  it('PostgreSQL unreachable: writes are still acknowledged (queued), consumers retry, the record converges', async () => {
    const result = await check(proxyOutage(fs, 'postgres', 'down'))
    expect(improperRefusals(result)).toEqual([])
  }, 120_000)

  it('Redis unreachable: reads are served from PostgreSQL, writes acknowledged, the cache converges afterwards', async () => {
    const result = await check(proxyOutage(fs, 'redis', 'down'))
    expect(improperRefusals(result)).toEqual([])
    expect(result.reads.failed, result.reads.failures.join('\n')).toBe(0)
    expect(result.reads.postgres).toBeGreaterThan(0)
  }, 120_000)
})
