/**
 * `npm run bench:scale`: how kvarc's cost grows with the size of the record and
 * of the values. One kvarc stack (nginx → two warm hosts, one consumer host) on
 * its own database, queues and cache prefix; the record is grown to each size
 * in turn, and at each size wrk measures through nginx:
 *   GET hit, GET miss (reads spread across the whole key range, each key once),
 *   PUT, one /api/all page from the middle of the key space; the visibility lag
 *   at half the PUT rate; the drain of a backlog against PostgreSQL's own rate
 *   for the same rows (ceiling.ts); the record's bytes per key and the cache's.
 * At one size (--value-at) it then measures PUT and GET with values of each
 * --value-sizes, and the consumer host's memory while it drains a backlog of the
 * largest. Progress on stderr, JSON in bench/results/scale-*.json, and the
 * tables and SVG plots in <docs>/performance.md (scale-report.ts).
 *
 *   --sizes a,b,c        record sizes in keys (default 100000,1000000,10000000)
 *   --value-sizes a,b,c  value bytes (default 100,10240,1048576)
 *   --value-at N         the record size the value sizes are measured at (default 1000000)
 *   --duration S         measured seconds per scenario (default 8)
 *   --connections N      wrk connections (default 64)
 *   --drain-count N      backlog of the drain measurement (default 200000)
 *   --lag-seconds S      visibility-lag run (default 8)
 *   --large-backlog N    values of the largest size queued for the consumer-memory run (default 256)
 *   --docs DIR           where performance.md and its plots go (default docs; "none" writes no docs)
 *   --results DIR        where the JSON goes (default bench/results)
 *   --from-json FILE     measure nothing: write the page and plots again from an earlier run's JSON
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join, resolve } from 'node:path'
import { isolate, type Isolated } from '../ops/isolated.js'
import { encodeCursor } from '../src/http/get-api-all/paging.js'
import { openDatabase } from '../src/shared/postgres.js'
import { consumerReady, waitUntilApplied } from './applied.js'
import { measureRecordCeiling } from './ceiling.js'
import { cpuOf, pick, servicesCpu } from './cpu.js'
import { countCached } from './data.js'
import { runLoad, type LoadOptions, type LoadResult } from './load.js'
import { machineBusySeconds, processTree, rssKiB } from './procs.js'
import { Progress } from './report.js'
import { cacheHitKeys, clearCache, growTable, recordSize, removeWritten, spreadingStride } from './scale-data.js'
import { parseScaleOptions, scaleCharts, scaleMarkdown, spliceGenerated, type ScaleOptions, type ScaleReport, type SizeResult, type ValueResult } from './scale-report.js'
import { startKvarcSide, type Side } from './sides.js'
import { measureDrain, measureLag } from './writes.js'

const ROOT = resolve(import.meta.dirname, '..')
/** The families the sizes are made of: everything else a measurement wrote is removed after it. */
const SEEDED = ['miss-', 'hit-'] as const
const SEED_VALUE_BYTES = 100
const APPLIED_TIMEOUT_MS = 300_000

/** RSS of the consumer host with its children, KiB. */
function consumerRss(side: Side): number {
  let kib = 0
  for (const top of side.processes().filter(p => /consumer/i.test(p.name))) {
    for (const p of processTree(top.pid)) kib += rssKiB(p.pid) ?? 0
  }
  return kib
}

/** Samples the consumer's RSS every 100 ms until stopped; the largest sample wins. */
function sampleConsumerRss(side: Side): { stop(): number } {
  let max = consumerRss(side)
  const timer = setInterval(() => { max = Math.max(max, consumerRss(side)) }, 100)
  return { stop() { clearInterval(timer); return Math.max(max, consumerRss(side)) } }
}

class ScaleRun {
  constructor(private readonly iso: Isolated, private readonly side: Side, private readonly opts: ScaleOptions, private readonly progress: Progress, private readonly db: Awaited<ReturnType<typeof openDatabase>>) {}

  private async load(label: string, options: Omit<LoadOptions, 'url' | 'connections' | 'threads' | 'durationSeconds'> & { connections?: number, durationSeconds?: number }): Promise<LoadResult> {
    const duration = options.durationSeconds ?? this.opts.duration
    const result = await runLoad({ url: this.side.url, connections: this.opts.connections, threads: 1, durationSeconds: duration, ...options })
    this.progress.line(`${label}: ${Math.round(result.rps).toLocaleString('en-US')} req/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, non-2xx ${result.non2xx}, errors ${result.errors}`)
    return result
  }

  /** The consumer host's CPU and the services', for the drain's CPU per write by part. */
  private async drainCpu(): Promise<Record<string, number>> {
    return { ...pick(cpuOf(this.side), /consumer/i), ...(await servicesCpu(this.iso)) }
  }

  private async applied(what: string): Promise<void> {
    const left = await waitUntilApplied(this.iso, this.side, APPLIED_TIMEOUT_MS)
    if (left) throw new Error(`${what}: ${left} after ${APPLIED_TIMEOUT_MS / 1000} s`)
  }

  async size(keys: number, from: number): Promise<SizeResult> {
    const p = (text: string) => this.progress.line(`${keys.toLocaleString('en-US')} keys: ${text}`)
    const loadStarted = performance.now()
    if (keys > from) {
      p(`growing the record from ${from.toLocaleString('en-US')}`)
      await growTable(this.db, 'miss-', from, keys, SEED_VALUE_BYTES, done => this.progress.status(`loading: ${done.toLocaleString('en-US')} rows`))
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000
    await clearCache(this.iso.config)
    const { bytesPerKey } = await cacheHitKeys(this.db, this.iso.config, this.opts.hitKeys, SEED_VALUE_BYTES)
    const record = await recordSize(this.db)
    p(`${record.rows.toLocaleString('en-US')} rows, table ${(record.tableBytes / 2 ** 20).toFixed(0)} MiB, indexes ${(record.indexBytes / 2 ** 20).toFixed(0)} MiB (loaded in ${loadSeconds.toFixed(0)} s)`)
    p(`Redis: ${bytesPerKey.toFixed(0)} bytes per cached key`)

    await this.load('warm-up', { scenario: 'get-hit', base: 0, span: this.opts.hitKeys, valueBytes: SEED_VALUE_BYTES, durationSeconds: 2 })
    const getHit = await this.load(`${keys} GET hit`, { scenario: 'get-hit', base: 0, span: this.opts.hitKeys, valueBytes: SEED_VALUE_BYTES })
    const missSpan = keys
    const missBefore = await countCached(this.iso.config, 'miss-')
    const getMiss = await this.load(`${keys} GET miss`, { scenario: 'get-miss', base: 0, span: missSpan, stride: spreadingStride(missSpan), valueBytes: SEED_VALUE_BYTES })
    const missReads = (await countCached(this.iso.config, 'miss-')) - missBefore
    const middle = `miss-${Math.floor(keys / 2)}`
    const listPage = await this.load(`${keys} /api/all page after ${middle}`, { scenario: 'get-path', base: 0, span: 1, valueBytes: 1, path: `/api/all?limit=100&cursor=${encodeCursor(middle)}` })
    const put = await this.load(`${keys} PUT`, { scenario: 'put', base: 0, span: 1_000_000, valueBytes: SEED_VALUE_BYTES })
    await this.applied('PUT')

    const rate = Math.max(1, Math.round(put.rps / 2))
    p(`visibility lag at ${rate} PUT/s (half of PUT's)`)
    const lag = await measureLag(this.side.url, { rate, seconds: this.opts.lagSeconds, probesPerSecond: 20, pollMs: 5, valueBytes: SEED_VALUE_BYTES, connections: this.opts.connections, latencyMs: put.p50Ms / 2 })
    p(`visibility lag p50 ${lag.p50Ms.toFixed(1)} ms, p99 ${lag.p99Ms.toFixed(1)} ms at ${Math.round(lag.achievedRate)} PUT/s`)
    await this.applied('lag')
    await removeWritten(this.db, SEEDED)

    const drain = await measureDrain(this.iso.config, { stopConsumer: () => this.side.stopConsumer!(), startConsumer: () => this.side.startConsumer!() },
      { count: this.opts.drainCount, valueBytes: SEED_VALUE_BYTES, timeoutMs: APPLIED_TIMEOUT_MS, via: 'api', url: this.side.url, connections: this.opts.connections, metricsUrl: () => this.side.consumerMetricsUrl?.(), cpu: () => this.drainCpu() },
      (text, live) => live ? this.progress.status(text) : p(text))
    await this.applied('drain')
    // The consumer's own batch shape: its mean batch and its batches in flight (ops/consumer-host-main.ts, default 4).
    const batch = drain.batches?.meanSize || 1000
    const busyBefore = machineBusySeconds()
    const ceiling = { ...await measureRecordCeiling(this.iso.config.databaseUrl, { count: this.opts.drainCount, valueBytes: SEED_VALUE_BYTES, batch, connections: 4, family: 'drain-' }), machineCpuSeconds: machineBusySeconds() - busyBefore }
    await removeWritten(this.db, SEEDED)
    p(`drain ${Math.round(drain.writesPerSecond).toLocaleString('en-US')} writes/s; PostgreSQL alone ${Math.round(ceiling.writesPerSecond).toLocaleString('en-US')} writes/s (batches of ${ceiling.batch}, ${ceiling.connections} at once): ${(drain.writesPerSecond / ceiling.writesPerSecond).toFixed(2)}×`)
    return { keys, record, loadSeconds, redisBytesPerKey: bytesPerKey, getHit, getMiss: { ...getMiss, pgReads: missReads }, listPage, put, lag, drain, ceiling }
  }

  async value(valueBytes: number): Promise<ValueResult> {
    const family = `v${valueBytes}-`
    const label = `${valueBytes.toLocaleString('en-US')} B values`
    const rss = sampleConsumerRss(this.side)
    const put = await this.load(`${label} PUT`, { scenario: 'put', family, base: 0, span: 1_000_000, valueBytes })
    await this.applied(`${label} PUT`)
    const consumerMaxKiB = rss.stop()
    // The keys the PUT run wrote, read twice: first from the record (the consumer caches only keys
    // already in the cache), then the keys that first pass read, now cached.
    // Each connection's last request may have been cut off when wrk stopped: stay below those keys.
    // And from index 1: wrk calls the script once before the run, so the PUT run's first key was index 1.
    const written = Math.max(1, Math.min(1_000_000, put.requests - put.non2xx - put.errors - this.opts.connections))
    const get = await this.load(`${label} GET from the record`, { scenario: 'get-hit', family, base: 1, span: written, valueBytes })
    const read = Math.max(1, Math.min(written, get.requests))
    const getCached = await this.load(`${label} GET cached`, { scenario: 'get-hit', family, base: 1, span: read, valueBytes })
    await removeWritten(this.db, SEEDED)
    const mbps = (load: LoadResult) => (load.rps * valueBytes) / 1e6
    return { valueBytes, put, get, getCached, putMBps: mbps(put), getMBps: mbps(get), getCachedMBps: mbps(getCached), consumerMaxKiB }
  }

  /** The consumer host's memory while it drains a backlog of the largest values, against prefetch × value size. */
  async largeBacklog(valueBytes: number, count: number): Promise<NonNullable<ScaleReport['largeDrain']>> {
    await this.side.stopConsumer!()
    await this.side.startConsumer!()
    const idleKiB = consumerRss(this.side)
    let rss: { stop(): number } | undefined
    const drain = await measureDrain(this.iso.config, {
      stopConsumer: () => this.side.stopConsumer!(),
      // The sampling starts with the consumer: the backlog arrives as soon as it consumes.
      startConsumer: async () => { await this.side.startConsumer!(); rss = sampleConsumerRss(this.side) },
    }, { count, valueBytes, timeoutMs: APPLIED_TIMEOUT_MS, via: 'api', url: this.side.url, connections: 16, metricsUrl: () => this.side.consumerMetricsUrl?.() },
    (text, live) => live ? this.progress.status(text) : this.progress.line(text))
    await this.applied('large backlog')
    const maxKiB = rss?.stop() ?? consumerRss(this.side)
    await removeWritten(this.db, SEEDED)
    const prefetch = await consumerPrefetch(this.side)
    this.progress.line(`large backlog: ${count} × ${valueBytes} B drained at ${(drain.writesPerSecond * valueBytes / 1e6).toFixed(1)} MB/s; consumer RSS ${(idleKiB / 1024).toFixed(0)} → ${(maxKiB / 1024).toFixed(0)} MiB (prefetch ${prefetch ?? '?'} messages)`)
    return { valueBytes, count, idleKiB, maxKiB, drain, prefetch }
  }
}

/** The consumer host's largest prefetch over its queues, from its /ready (undefined when it does not say). */
async function consumerPrefetch(side: Side): Promise<number | undefined> {
  const prefetch = (await consumerReady(side))?.prefetch
  return prefetch ? Math.max(...Object.values(prefetch)) : undefined
}

/** The page between its markers, and its plots, from a report. */
function writeDocs(report: ScaleReport, docsDir: string, progress: Progress): string {
  const markdown = scaleMarkdown(report)
  const docs = resolve(ROOT, docsDir)
  mkdirSync(join(docs, 'performance'), { recursive: true })
  for (const chart of scaleCharts(report)) writeFileSync(join(docs, 'performance', chart.file), chart.svg)
  const page = join(docs, 'performance.md')
  writeFileSync(page, spliceGenerated(existsSync(page) ? readFileSync(page, 'utf8') : undefined, markdown))
  progress.line(`wrote ${page} and its plots`)
  return markdown
}

async function main(): Promise<void> {
  const opts = parseScaleOptions(process.argv.slice(2))
  const progress = new Progress()
  if (opts.fromJson) {
    const report = JSON.parse(readFileSync(resolve(opts.fromJson), 'utf8')) as ScaleReport
    process.stdout.write(writeDocs(report, opts.docs === 'none' ? 'docs' : opts.docs, progress))
    return
  }
  for (const tool of ['wrk', 'nginx']) {
    try { execFileSync('which', [tool], { stdio: 'ignore' }) } catch { throw new Error(`${tool} is not installed: apt-get install -y ${tool}`) }
  }
  const report: ScaleReport = {
    startedAt: new Date().toISOString(),
    finishedAt: '',
    machine: { cpus: cpus().length, memoryGiB: totalmem() / 2 ** 30, loadavg: loadavg(), node: process.version },
    options: opts,
    sizes: [],
    values: [],
    errors: [],
  }
  const iso = await isolate('bench_scale')
  let side: Side | undefined
  let db: Awaited<ReturnType<typeof openDatabase>> | undefined
  const close = async () => {
    await side?.close().catch(error => report.errors.push(`closing kvarc: ${(error as Error).message}`))
    await db?.end().catch(() => {})
    await iso.cleanup().catch(error => report.errors.push(`cleanup: ${(error as Error).message}`))
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress.line(`${signal}: stopping the stack and dropping the bench's database`)
      void close().finally(() => process.exit(130))
    })
  }
  const started = performance.now()
  try {
    db = await openDatabase(iso.config.databaseUrl, 2)
    progress.line(`kvarc: starting the stack on ${iso.id}`)
    side = await startKvarcSide({ ...iso.env, LOG_LEVEL: 'warn' })
    const run = new ScaleRun(iso, side, opts, progress, db)
    let loaded = 0
    for (const keys of opts.sizes) {
      try {
        report.sizes.push(await run.size(keys, loaded))
      } catch (error) {
        report.errors.push(`${keys} keys: ${(error as Error).message}`)
        progress.line(`${keys} keys failed: ${(error as Error).message}`)
      }
      loaded = Math.max(loaded, keys)
      if (keys === opts.valueAt) {
        for (const valueBytes of opts.valueSizes) {
          try {
            report.values.push(await run.value(valueBytes))
          } catch (error) {
            report.errors.push(`${valueBytes} B values: ${(error as Error).message}`)
            progress.line(`${valueBytes} B values failed: ${(error as Error).message}`)
          }
        }
        if (opts.largeBacklog > 0) {
          try {
            report.largeDrain = await run.largeBacklog(Math.max(...opts.valueSizes), opts.largeBacklog)
          } catch (error) {
            report.errors.push(`large backlog: ${(error as Error).message}`)
          }
        }
      }
    }
  } catch (error) {
    report.errors.push(`bench stopped early: ${(error as Error).message}`)
    progress.line(`bench stopped early: ${(error as Error).stack}`)
  } finally {
    progress.line('stopping the stack and dropping the bench\'s database')
    await close()
  }
  report.finishedAt = new Date().toISOString()
  report.totalSeconds = (performance.now() - started) / 1000
  const dir = resolve(ROOT, opts.results)
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `scale-${report.startedAt.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
  process.stdout.write(opts.docs === 'none' ? scaleMarkdown(report) : writeDocs(report, opts.docs, progress))
  process.stdout.write(`\nJSON: ${file}\n`)
  // Figures with errors beside them are not a result: say so to whoever runs it (a person or a script).
  if (report.errors.length) process.exitCode = 1
}

main().catch(error => {
  process.stderr.write(`bench:scale failed: ${(error as Error).stack ?? error}\n`)
  process.exit(1)
})
