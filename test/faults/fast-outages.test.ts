/**
 * Fault injection, fast subset, part two: backing-service outages for this
 * stack alone. Its hosts reach PostgreSQL, Redis and RabbitMQ through TCP fault
 * proxies (harness/proxy.ts), so an outage resets this stack's connections and
 * refuses (or swallows) new ones without disturbing any other test on the
 * machine. The full suite restarts the real services instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { proxyOutage } from './harness/faults.js'
import { runAndCheck } from './harness/check.js'
import { FAST, faultTable, improperRefusals, type Fault, type ScenarioResult } from './harness/scenario.js'
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


const check = (fault: Fault) => runAndCheck(fs, fault, FAST, results)

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
