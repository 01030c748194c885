/**
 * Fault injection, fast subset, part two: backing-service outages for this
 * stack alone. Its hosts reach PostgreSQL, Redis and RabbitMQ through TCP fault
 * proxies (harness/proxy.ts), so an outage resets this stack's connections and
 * refuses (or swallows) new ones without disturbing any other test on the
 * machine. The full suite restarts the real services instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { keepAliveAgent, request } from './harness/client.js'
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

  it('Redis black hole for 30 s: the record keeps applying writes, read back from PostgreSQL during the outage; afterwards no stale cache entry survives', async () => {
    // Prepare: a black hole (connections accepted, nothing answered) that a watcher reads through while it lasts.
    const outage = proxyOutage(fs, 'redis', 'hang', 30_000)
    let undone = false
    let watcher: Promise<WatchedWrite[]> = Promise.resolve([])
    const fault = {
      ...outage,
      inject: async () => {
        await outage.inject()
        watcher = readYourWritesWhile(() => !undone)
      },
      undo: async () => {
        undone = true
        await outage.undo()
      },
    }
    // Act (the scenario's load runs throughout; its checks cover loss and stale cache entries afterwards)
    const result = await check(fault)
    const watched = await watcher
    // Assess: writes were applied and read back from the record while Redis was still away.
    const duringOutage = watched.filter(w => w.readWhileOutage)
    expect(duringOutage.length, JSON.stringify(watched)).toBeGreaterThanOrEqual(3)
    expect(duringOutage.every(w => w.source === 'postgres'), JSON.stringify(watched)).toBe(true)
    expect(improperRefusals(result)).toEqual([])
    expect(result.reads.failed, result.reads.failures.join('\n')).toBe(0)
  }, 180_000)
})

interface WatchedWrite { key: string, version: string, source: string, readWhileOutage: boolean }

/**
 * While `active()`: PUT a fresh key through the stack, then GET it until the
 * answer holds that version (a write is readable only once the consumer applied
 * it to the record). Records whether the outage was still on when it was read.
 */
async function readYourWritesWhile(active: () => boolean): Promise<WatchedWrite[]> {
  const agent = keepAliveAgent(1)
  const base = new URL(fs.target.url)
  const out: WatchedWrite[] = []
  try {
    for (let i = 0; active() && i < 20; i++) {
      const key = `watch-${Date.now()}-${i}`
      const put = await request(base, { agent, method: 'PUT', path: '/api', body: JSON.stringify({ key, value: `w${i}` }), timeoutMs: 15_000 })
      if (put.status !== 200) continue
      const version = JSON.parse(put.body).version as string
      while (active()) {
        const get = await request(base, { agent, method: 'GET', path: `/api?key=${key}`, timeoutMs: 15_000 })
        const body = get.status === 200 ? JSON.parse(get.body) : undefined
        if (body?.version === version) {
          out.push({ key, version, source: body.source, readWhileOutage: active() })
          break
        }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
    return out
  } finally {
    agent.destroy()
  }
}
