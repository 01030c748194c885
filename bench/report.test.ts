import { describe, expect, it } from 'vitest'
import { parseWrkOutput, type LoadResult } from './load.js'
import { markdown, meets, mergeRounds, Progress, ratioLines, scenarioTable, targets, type BenchReport, type ScenarioResult } from './report.js'

function load(rps: number): LoadResult {
  return { requests: rps * 10, seconds: 10, rps, p50Ms: 1.5, p90Ms: 3, p99Ms: 9.25, maxMs: 20, non2xx: 0, errors: 0 }
}

function result(side: ScenarioResult['side'], scenario: ScenarioResult['scenario'], rps: number): ScenarioResult {
  return { side, scenario, load: load(rps), cpu: { host: 1.5 }, rssBefore: [{ name: 'host', pid: 10, comm: 'node', cmd: 'node', kib: 102400 }], rssAfter: [{ name: 'host', pid: 10, comm: 'node', cmd: 'node', kib: 112640 }] }
}

describe('bench report', () => {
  it('computes the ratios against the baseline and judges each target', () => {
    // Prepare
    const scenarios = [result('kvarc', 'get-hit', 9000), result('baseline', 'get-hit', 10000), result('kvarc', 'put', 7000), result('baseline', 'put', 10000)]
    // Act
    const list = targets({ scenarios, drain: { messages: 1, via: 'api', queuedMessages: 1, publishSeconds: 1, publishRate: 1, startupSeconds: 1, drainSeconds: 1, writesPerSecond: 60000, rowsApplied: 1 } })
    // Assess
    expect(list.map(t => [t.name, t.value, meets(t)])).toEqual([
      ['GET hit kvarc/baseline', 0.9, true],
      ['PUT kvarc/baseline', 0.7, false],
      ['drain', 60000, true],
      ['visibility lag p99', undefined, undefined],
    ])
    expect(ratioLines({ scenarios })).toBe('- get-hit: 9,000 / 10,000 req/s = 0.90×; request-path CPU 17 vs 15 µs/req → 0.90× if CPU-bound\n- put: 7,000 / 10,000 req/s = 0.70×; request-path CPU 21 vs 15 µs/req → 0.70× if CPU-bound')
  })

  it('does not compare a scenario where a side measured an outage', () => {
    const broken = result('baseline', 'put', 10000)
    broken.load = { ...broken.load, non2xx: 5000 }
    const scenarios = [result('kvarc', 'put', 7000), broken]
    expect(targets({ scenarios })[1]!.value).toBeUndefined()
    expect(ratioLines({ scenarios })).toBe('- put: not comparable: baseline had 5 % failed requests')
  })

  it('renders one markdown row per scenario and side, and the targets last', () => {
    const scenarios = [result('kvarc', 'get-hit', 9000), result('baseline', 'get-hit', 10000)]
    expect(scenarioTable(scenarios).split('\n')[2]).toBe('| get-hit | kvarc | 9,000 | 1.50 | 9.25 | 0 | 0 | 90,000 |  |')
    const report: BenchReport = {
      startedAt: 't', finishedAt: 't', machine: { cpus: 2, loadavg: [1, 1, 1], node: 'v20' }, options: {}, generator: 'wrk',
      scenarios, targets: targets({ scenarios }), errors: [],
    }
    const text = markdown(report).trimEnd()
    expect(text.split('\n').at(-1)).toBe('- visibility lag p99: — ms (target <= 250 ms) NOT MEASURED')
    expect(text).toContain('| kvarc | host | 10 | 100.0 | 110.0 | 110.0 |')
  })

  it('merges alternating rounds: requests add up, p99 is the worst round', () => {
    const a = { ...result('kvarc', 'get-miss', 1000), pgReads: 10_000 }
    const b = { ...result('kvarc', 'get-miss', 3000), pgReads: 20_000 }
    b.load = { ...b.load, p99Ms: 30, p50Ms: 2.5 }
    const merged = mergeRounds([a, b])
    expect(merged.load).toMatchObject({ requests: 40_000, seconds: 20, rps: 2000, p50Ms: 2, p99Ms: 30 })
    expect(merged.cpu).toEqual({ host: 3 })
    expect(merged.note).toBe('75 % of answers read PostgreSQL (30,000 cache fills); rounds: 1,000 / 3,000 req/s')
  })

  it('parses the line the wrk script prints', () => {
    const out = 'Running 1s test\nBENCHJSON {"requests":2000,"durationUs":2000000,"connectErrors":0,"readErrors":1,"writeErrors":0,"non2xx":3,"timeouts":2,"p50Us":1500,"p90Us":2000,"p99Us":9000,"maxUs":12000,"meanUs":1600.5}\n'
    expect(parseWrkOutput(out)).toEqual({ requests: 2000, seconds: 2, rps: 1000, p50Ms: 1.5, p90Ms: 2, p99Ms: 9, maxMs: 12, non2xx: 3, errors: 3 })
    expect(() => parseWrkOutput('connection refused')).toThrow(/wrk printed no result/)
  })

  it('prints plain progress lines when stderr is not a terminal', () => {
    const written: string[] = []
    let now = 0
    const progress = new Progress({ isTTY: false, write: (text: string) => { written.push(text); return true } } as never, () => now)
    progress.status('5 s left')
    now = 3000
    progress.line('kvarc get-hit: 10 s')
    expect(written).toEqual(['[   3 s] kvarc get-hit: 10 s\n'])
  })
})
