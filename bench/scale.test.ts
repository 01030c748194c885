/**
 * `npm run bench:scale` end to end at a toy size: the stack starts, every
 * measurement runs through it, the JSON, the page and its four plots are
 * written where asked, and nothing it loaded is left behind (its database is
 * dropped, its stack stopped). Asserts on what was produced, never on speed.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { SERVICES } from '../test/support/isolated.js'
import { BEGIN, END, type ScaleReport } from './scale-report.js'

const ROOT = resolve(import.meta.dirname, '..')
const dir = mkdtempSync(join(tmpdir(), 'kvarc-scale-test-'))

afterAll(() => rmSync(dir, { recursive: true, force: true }))

async function benchDatabases(): Promise<string[]> {
  const client = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres` })
  await client.connect()
  try {
    return (await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'kvarc_bench_scale_%'`)).rows.map(r => r.datname)
  } finally {
    await client.end()
  }
}

describe('npm run bench:scale', () => {
  it('measures two toy sizes and two value sizes, writes the JSON, the page and its plots, and drops what it loaded', async () => {
    // Prepare
    const before = await benchDatabases()
    const args = ['--import', 'tsx', 'bench/scale.ts', '--sizes', '1000,3000', '--value-at', '1000', '--value-sizes', '100,70000', '--duration', '1',
      '--connections', '8', '--drain-count', '300', '--lag-seconds', '1', '--large-backlog', '4', '--hit-keys', '200', '--docs', join(dir, 'docs'), '--results', join(dir, 'results')]

    // Act
    const { code, stdout, stderr } = await new Promise<{ code: number, stdout: string, stderr: string }>(done => {
      execFile(process.execPath, args, { cwd: ROOT, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => done({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }))
    })

    // Assess: every measurement ran without an error, at each size.
    expect(code, stderr.slice(-3000)).toBe(0)
    const [json] = readdirSync(join(dir, 'results'))
    const report = JSON.parse(readFileSync(join(dir, 'results', json!), 'utf8')) as ScaleReport
    expect(report.errors).toEqual([])
    expect(report.sizes.map(s => [s.keys, s.record.rows])).toEqual([[1000, 1200], [3000, 3200]])
    for (const size of report.sizes) {
      expect(size.getHit.requests).toBeGreaterThan(0)
      expect(size.getMiss.pgReads).toBeGreaterThan(0)
      expect(size.drain.rowsApplied).toBe(300)
      expect(size.ceiling.rows).toBe(300)
      expect(size.lag.probes).toBeGreaterThan(0)
    }
    expect(report.values.map(v => v.valueBytes)).toEqual([100, 70000])
    // The GETs read only keys the PUT run wrote: every answer is a 200.
    for (const v of report.values) expect([v.get.non2xx, v.getCached.non2xx], `${v.valueBytes} B`).toEqual([0, 0])
    expect(report.largeDrain).toMatchObject({ valueBytes: 70000, count: 4, prefetch: 5000 })
    // The page keeps its generated part between the markers, with the plots it links.
    const page = readFileSync(join(dir, 'docs', 'performance.md'), 'utf8')
    expect(page).toContain(BEGIN)
    expect(page).toContain(END)
    expect(stdout).toContain('| keys | 10³ | 3,000 |')
    for (const plot of ['requests-by-keys.svg', 'p99-by-keys.svg', 'drain-by-keys.svg', 'throughput-by-value-size.svg']) {
      expect(page).toContain(`performance/${plot}`)
      expect(readFileSync(join(dir, 'docs', 'performance', plot), 'utf8')).toMatch(/^<svg[\s\S]*<\/svg>\n$/)
    }
    // Nothing left: its database is gone.
    expect(await benchDatabases()).toEqual(before)
    expect(existsSync(join(ROOT, 'bench/results', json!))).toBe(false)
  }, 300_000)
})
