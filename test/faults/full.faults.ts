/**
 * The full fault suite (`npm run test:faults`): heavier load than the fast
 * subset, every fault, including restarts of the machine's real RabbitMQ,
 * PostgreSQL and Redis. Those restarts disturb anything else using the
 * services while they last, which is why they are not in `npm test`. Every
 * service stopped here is started again in the fault's undo and, whatever
 * happens, in afterAll (ensureServicesUp), which waits until each answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { consumerSigkill, flushCachePrefix, gracefulRestartAll, httpSigkill, proxyOutage, serviceRestart } from './harness/faults.js'
import { runAndCheck } from './harness/check.js'
import { FULL, faultTable, improperRefusals, type Fault, type ScenarioResult } from './harness/scenario.js'
import { ensureServicesUp } from './harness/services.js'
import { startFaultStack, type FaultStack } from './harness/stack.js'

let fs: FaultStack & { output: { text(): string } }
const results: ScenarioResult[] = []

beforeAll(async () => {
  await ensureServicesUp()
  // Proxies in the path (for the black-hole faults); the real-service restarts act behind them.
  fs = await startFaultStack({ label: 'ffull', proxies: true })
}, 120_000)

afterAll(async () => {
  try {
    if (results.length) console.log(`\nfault table (full suite, ${FULL.clients} writers + ${FULL.readers} readers on ${FULL.keys} keys)\n${faultTable(results)}\n`)
    await fs?.close()
  } finally {
    const started = await ensureServicesUp()
    if (started.length) console.log(`afterAll had to start: ${started.join(', ')}`)
  }
}, 300_000)

async function check(fault: Fault, extra?: (r: ScenarioResult) => void): Promise<ScenarioResult> {
  const result = await runAndCheck(fs, fault, FULL, results)
  extra?.(result)
  return result
}

const only503 = (r: ScenarioResult) => {
  // A write is refused when the broker (or its confirm) is unavailable: never falsely queued, never a 500.
  expect(improperRefusals(r)).toEqual([])
}

const minutes = (n: number) => n * 60_000

describe('fault injection under load (full suite)', () => {
  it('SIGKILL consumer host', () => check(consumerSigkill(fs, 3000), only503), minutes(4))
  it('SIGKILL one HTTP host', () => check(httpSigkill(fs, 4000)), minutes(4))
  it('SIGTERM everything, start again', () => check(gracefulRestartAll(fs, 1000)), minutes(4))
  it('flush the stack\'s Redis prefix', () => check(flushCachePrefix(fs, 2000), r => { only503(r); expect(r.reads.failed).toBe(0) }), minutes(4))
  it('restart RabbitMQ (stop_app / start_app)', () => check(serviceRestart('rabbitmq', 3000, 'app'), only503), minutes(5))
  it('restart RabbitMQ (whole node: rabbitmqctl stop, rabbitmq-server -detached)', () => check(serviceRestart('rabbitmq', 1000, 'default'), only503), minutes(6))
  it('restart PostgreSQL', () => check(serviceRestart('postgres', 3000), only503), minutes(5))
  it('restart Redis (every entry lost)', () => check(serviceRestart('redis', 3000), r => { only503(r); expect(r.reads.failed, r.reads.failures.join('\n')).toBe(0) }), minutes(5))
  it('RabbitMQ black hole for this stack', () => check(proxyOutage(fs, 'rabbitmq', 'hang', 5000), only503), minutes(4))
  it('PostgreSQL black hole for this stack', () => check(proxyOutage(fs, 'postgres', 'hang', 5000), only503), minutes(4))
  it('Redis black hole for this stack', () => check(proxyOutage(fs, 'redis', 'hang', 5000), r => { only503(r); expect(r.reads.failed, r.reads.failures.join('\n')).toBe(0) }), minutes(4))
})
