import { describe, expect, it } from 'vitest'
import type { LoadResult } from './load.js'
import { meets } from './report.js'
import { BEGIN, commandFlags, END, parseScaleOptions, scaleCharts, scaleMarkdown, scaleTargets, spliceGenerated, type ScaleReport, type SizeResult } from './scale-report.js'

function load(rps: number, p99Ms = 10): LoadResult {
  return { requests: rps * 8, seconds: 8, rps, p50Ms: p99Ms / 4, p90Ms: p99Ms / 2, p99Ms, maxMs: p99Ms * 2, non2xx: 0, errors: 0 }
}

function size(keys: number, { missP99, put, drain, ceiling }: { missP99: number, put: number, drain: number, ceiling: number }): SizeResult {
  return {
    keys,
    record: { rows: keys + 10_000, tableBytes: (keys + 10_000) * 180, indexBytes: (keys + 10_000) * 60 },
    loadSeconds: keys / 100_000,
    redisBytesPerKey: 560,
    getHit: load(9000, 20),
    getMiss: { ...load(3000, missP99), pgReads: 3000 * 8 },
    listPage: load(800, 200),
    put: load(put, 60),
    lag: { targetRate: put / 2, achievedRate: put / 2, probes: 160, p50Ms: 20, p99Ms: 70, maxMs: 90, lost: 0, non2xx: 0 },
    drain: { messages: 200_000, via: 'api', queuedMessages: 900, publishSeconds: 40, publishRate: 5000, startupSeconds: 1, drainSeconds: 200_000 / drain, writesPerSecond: drain, rowsApplied: 200_000, cpu: { consumer: 4, 'postgres (own db)#11': 3, 'postgres (own db)#12': 3, 'rabbitmq#20': 5, 'redis-server#30': 1, 'machine busy': 18 }, batches: { count: 200, meanSize: 1000, meanMs: 30, functionSeconds: 6, functionShare: 0.9 } },
    ceiling: { rows: 200_000, seconds: 200_000 / ceiling, writesPerSecond: ceiling, batch: 1000, connections: 4, machineCpuSeconds: 6 },
  }
}

function report(sizes: SizeResult[]): ScaleReport {
  return {
    startedAt: '2026-12-01T03:00:00.000Z',
    finishedAt: '2026-12-01T03:20:00.000Z',
    totalSeconds: 1200,
    machine: { cpus: 2, memoryGiB: 24, loadavg: [1, 1, 1], node: 'v20.20.2' },
    options: parseScaleOptions([]),
    sizes,
    values: [
      { valueBytes: 100, put: load(5000), get: load(3000), getCached: load(9000), putMBps: 0.5, getMBps: 0.3, getCachedMBps: 0.9, consumerMaxKiB: 200 * 1024 },
      { valueBytes: 1_048_576, put: load(20), get: load(80), getCached: load(80), putMBps: 21, getMBps: 84, getCachedMBps: 84, consumerMaxKiB: 400 * 1024 },
    ],
    largeDrain: { valueBytes: 1_048_576, count: 256, idleKiB: 180 * 1024, maxKiB: 500 * 1024, prefetch: 5000, drain: { messages: 256, via: 'api', queuedMessages: 256, publishSeconds: 10, publishRate: 25, startupSeconds: 1, drainSeconds: 6, writesPerSecond: 40, rowsApplied: 256 } },
    errors: [],
  }
}

describe('bench:scale report', () => {
  it('judges growth from the smallest to the largest size, the drain at every size, and the consumer memory', () => {
    // Prepare: GET miss p99 doubles (missed), PUT drops by 1.25 (met), the drain falls under half of PostgreSQL's rate at 10⁷.
    const sizes = [size(10_000_000, { missP99: 40, put: 4000, drain: 20_000, ceiling: 50_000 }), size(100_000, { missP99: 20, put: 5000, drain: 40_000, ceiling: 50_000 })]
    // Act
    const list = scaleTargets(report(sizes))
    // Assess: sorted by size whatever the order measured; 320 MiB grown against 5,000 MiB allowed.
    expect(list.map(t => [t.name, t.value, meets(t)])).toEqual([
      ['GET miss p99 growth, 10⁵ → 10⁷ keys', 2, false],
      ['PUT req/s drop, 10⁵ → 10⁷ keys', 1.25, true],
      ['drain ÷ PostgreSQL\'s own rate at 10⁵ keys', 0.8, true],
      ['drain ÷ PostgreSQL\'s own rate at 10⁷ keys', 0.4, false],
      ['consumer RSS growth draining 1 MiB values ÷ (prefetch × value size)', 320 / 5000, true],
    ])
  })

  it('renders the tables, one plot per curve, and the command that reproduces the run', () => {
    const r = report([size(100_000, { missP99: 20, put: 5000, drain: 40_000, ceiling: 50_000 }), size(1_000_000, { missP99: 22, put: 4800, drain: 38_000, ceiling: 49_000 })])
    const text = scaleMarkdown(r)
    expect(text.startsWith(BEGIN)).toBe(true)
    expect(text.trimEnd().endsWith(END)).toBe(true)
    expect(text).toContain('Command: `npm run bench:scale`.')
    expect(text).toContain('| keys | 10⁵ | 10⁶ |')
    expect(text).toContain('| drain ÷ PostgreSQL alone | 0.80× | 0.78× |')
    expect(text).toContain('| 1 MiB | 20 | 21.0 |')
    // Where the drain's CPU went, against PostgreSQL alone: the processes of a part add up.
    expect(text).toContain('| machine CPU µs per write: drain / PostgreSQL alone | 90 / 30 | 90 / 30 |')
    expect(text).toContain('| drain CPU µs per write: consumer host / PostgreSQL / RabbitMQ / Redis | 20 / 30 / 25 / 5 | 20 / 30 / 25 / 5 |')
    expect(text).toContain('+320 MiB')
    const charts = scaleCharts(r)
    expect(charts.map(c => c.file)).toEqual(['requests-by-keys.svg', 'p99-by-keys.svg', 'drain-by-keys.svg', 'throughput-by-value-size.svg'])
    for (const chart of charts) expect(text).toContain(`](performance/${chart.file})`)
  })

  it('names only the flags that differ from the defaults', () => {
    expect(commandFlags(parseScaleOptions([]))).toBe('')
    expect(commandFlags(parseScaleOptions(['--sizes', '1000,100', '--value-at', '100', '--duration', '2', '--docs', '/tmp/x']))).toBe(' -- --sizes 100,1000 --value-at 100 --duration 2')
  })

  it('refuses options that cannot be run', () => {
    expect(() => parseScaleOptions(['--sizes', '0'])).toThrow(/--sizes/)
    expect(() => parseScaleOptions(['--value-sizes', '2000000'])).toThrow(/--value-sizes: each must be an integer from 1 to 1048576/)
    expect(() => parseScaleOptions(['--sizes', '1000', '--value-at', '5000'])).toThrow(/--value-at 5000 must be one of --sizes/)
  })

  it('replaces only the generated part of the page, keeping what people wrote around it', () => {
    const page = `# Performance\n\nWhat we found.\n\n${BEGIN}\nold tables\n${END}\n\n## Notes\nkept\n`
    const next = spliceGenerated(page, `${BEGIN}\nnew tables\n${END}\n`)
    expect(next).toBe(`# Performance\n\nWhat we found.\n\n${BEGIN}\nnew tables\n${END}\n\n## Notes\nkept\n`)
    expect(spliceGenerated(undefined, `${BEGIN}\nx\n${END}\n`)).toBe(`# Performance\n\n${BEGIN}\nx\n${END}\n`)
    expect(spliceGenerated('# Performance\n\nno markers yet\n', `${BEGIN}\nx\n${END}\n`)).toBe(`# Performance\n\nno markers yet\n\n${BEGIN}\nx\n${END}\n`)
  })
})
