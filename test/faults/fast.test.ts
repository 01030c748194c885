/**
 * Fault injection, fast subset (runs in `npm test` / CI): the real stack (nginx,
 * two HTTP hosts, the consumer host) under PUT/DELETE/GET load from several
 * clients on overlapping keys, while one process fault at a time is injected.
 * After each: nothing acknowledged lost, no resurrection, cache coherent with
 * the record, queues drained, no dead letters. No shared service is restarted
 * here (the graceful stop of everything is in fast-graceful.test.ts, outages of
 * this stack alone in fast-outages.test.ts; restarts of the machine's services
 * are in the full suite, `npm run test:faults`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { consumerSigkill, flushCachePrefix, httpSigkill } from './harness/faults.js'
import { runAndCheck } from './harness/check.js'
import { FAST, faultTable, improperRefusals, type Fault, type ScenarioResult } from './harness/scenario.js'
import { startFaultStack, type FaultStack } from './harness/stack.js'

let fs: FaultStack & { output: { text(): string } }
const results: ScenarioResult[] = []

beforeAll(async () => {
  fs = await startFaultStack({ label: 'ffast' })
}, 60_000)

afterAll(async () => {
  if (results.length) console.log(`\nfault table (fast subset, ${FAST.clients} writers + ${FAST.readers} readers on ${FAST.keys} keys)\n${faultTable(results)}\n`)
  await fs?.close()
}, 60_000)


const check = (fault: Fault) => runAndCheck(fs, fault, FAST, results)

describe('fault injection under load (fast subset)', () => {
  it('SIGKILL of the consumer host loses nothing: unacknowledged batches are redelivered and re-apply', async () => {
    const result = await check(consumerSigkill(fs))
    // Writes never depend on the consumer. On a saturated machine a broker confirm can still outlast
    // the publish timeout: such a write is refused (503), never a false 200 and never a 500.
    expect(improperRefusals(result)).toEqual([])
  }, 120_000)

  it('SIGKILL of one HTTP host: nginx routes around it, nothing acknowledged is lost', async () => {
    const result = await check(httpSigkill(fs, 2000))
    // Requests in flight on the killed host may fail (unknown outcome); they must be answered as such, never hang.
    for (const status of Object.keys(result.refusals.statuses)) expect(['502', '503', '504', 'ECONNRESET', 'socket hang up']).toContain(status)
  }, 120_000)

  it('flushing the stack\'s Redis prefix: reads refill from PostgreSQL, the cache converges', async () => {
    const result = await check(flushCachePrefix(fs))
    expect(improperRefusals(result)).toEqual([])
    expect(result.reads.failed).toBe(0)
    expect(result.reads.postgres).toBeGreaterThan(0)
  }, 120_000)
})
