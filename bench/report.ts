/**
 * What a bench run found, as data (the JSON file), as markdown (stdout) and as
 * progress lines while it runs (stderr). Pure formatting, no I/O besides the
 * progress writer, so it is cheap to test.
 */
import type { CheckCost } from './auth-check.js'
import type { CeilingResult } from './ceiling.js'
import { addBuckets, BATCH_SCENARIOS, bucketPercentile, PREFER_WAIT_SECONDS, WRITE_OUTCOME_SCENARIOS, type LoadResult, type Scenario } from './load.js'
import type { SideName } from './sides.js'

export interface ProcessRss { name: string, pid: number, comm: string, cmd: string, kib: number | undefined }

export interface ScenarioResult {
  side: SideName
  scenario: Scenario
  load: LoadResult
  /** CPU seconds each top-level process (with its children) used during the measured run. */
  cpu: Record<string, number>
  /** CPU seconds during the run of PostgreSQL (this side's backends), Redis, RabbitMQ, wrk, and the whole machine ('machine busy'). */
  services?: Record<string, number>
  rssBefore: ProcessRss[]
  rssAfter: ProcessRss[]
  /** Anything the reader needs to interpret the row (e.g. how many GET-miss answers really came from PostgreSQL). */
  note?: string
  /** GET-miss: distinct keys filled into the cache during the run = answers that read PostgreSQL. */
  pgReads?: number
  /** The alternating rounds this row merges, each as wrk reported it. */
  rounds?: LoadResult[]
  /** wrk connections of the measured run (put-if-match runs at half the others'). */
  connections?: number
  /** Writes each request carries (batch scenarios); one when absent. */
  writesPerRequest?: number
  /** kvarc's write scenarios, per round: seconds from wrk's end until kvarc had finished (nothing ready, nothing held, no cache repair waiting). */
  queueEmptySeconds?: number[]
  /** What kvarc still had to do when the bench stopped waiting for it (a round that never finished), e.g. "904 messages held by the consumer". */
  unfinished?: string
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/**
 * One row from a side's rounds of a scenario: requests and time add up; p50 and
 * p90 are the rounds' median, p99 and max the worst round's (percentiles of
 * separate runs cannot be merged exactly; the rounds stay in the JSON).
 */
export function mergeRounds(results: ScenarioResult[]): ScenarioResult {
  const first = results[0]!
  const loads = results.map(r => r.load)
  const requests = loads.reduce((a, l) => a + l.requests, 0)
  const seconds = loads.reduce((a, l) => a + l.seconds, 0)
  const add = (records: (Record<string, number> | undefined)[]) => {
    const out: Record<string, number> = {}
    for (const record of records) for (const [k, v] of Object.entries(record ?? {})) out[k] = (out[k] ?? 0) + v
    return out
  }
  const pgReads = results.some(r => r.pgReads !== undefined) ? results.reduce((a, r) => a + (r.pgReads ?? 0), 0) : undefined
  const notes = [...new Set(results.map(r => r.note).filter(Boolean))]
  if (pgReads !== undefined) notes.unshift(`${requests ? ((100 * Math.min(pgReads, requests)) / requests).toFixed(0) : 0} % of answers read PostgreSQL (${pgReads.toLocaleString('en-US')} cache fills)`)
  if (results.length > 1) notes.push(`rounds: ${loads.map(l => Math.round(l.rps).toLocaleString('en-US')).join(' / ')} req/s`)
  const outcomes = loads.some(l => l.outcomes) ? add(loads.map(l => l.outcomes)) : undefined
  const appliedBuckets = addBuckets(loads.map(l => l.appliedBuckets))
  const emptied = results.flatMap(r => r.queueEmptySeconds ?? [])
  const unfinished = results.map(r => r.unfinished).filter(Boolean).at(-1)
  return {
    side: first.side,
    scenario: first.scenario,
    load: {
      requests,
      seconds,
      rps: seconds > 0 ? requests / seconds : 0,
      p50Ms: median(loads.map(l => l.p50Ms)),
      p90Ms: median(loads.map(l => l.p90Ms)),
      p99Ms: Math.max(...loads.map(l => l.p99Ms)),
      maxMs: Math.max(...loads.map(l => l.maxMs)),
      non2xx: loads.reduce((a, l) => a + l.non2xx, 0),
      errors: loads.reduce((a, l) => a + l.errors, 0),
      ...(outcomes ? { outcomes } : {}),
      ...(appliedBuckets ? { appliedBuckets } : {}),
    },
    ...(first.connections !== undefined ? { connections: first.connections } : {}),
    ...(first.writesPerRequest !== undefined ? { writesPerRequest: first.writesPerRequest } : {}),
    ...(emptied.length ? { queueEmptySeconds: emptied } : {}),
    ...(unfinished ? { unfinished } : {}),
    cpu: add(results.map(r => r.cpu)),
    services: add(results.map(r => r.services)),
    rssBefore: first.rssBefore,
    rssAfter: results[results.length - 1]!.rssAfter,
    note: notes.length ? notes.join('; ') : undefined,
    pgReads,
    rounds: loads,
  }
}

export interface DrainResult {
  /** Writes in the backlog. */
  messages: number
  /** How the backlog was queued: PUTs through the front door (coalesced as the hosts do), or one-write messages straight to the broker. */
  via: 'api' | 'broker'
  /** Messages on the queue holding those writes. */
  queuedMessages: number
  publishSeconds: number
  publishRate: number
  /** From starting the consumer to the first applied row: process start-up, not drain speed. */
  startupSeconds: number
  /** From the first applied row to the last: what the consumer path sustains. */
  drainSeconds: number
  writesPerSecond: number
  rowsApplied: number
  /** CPU seconds spent from the first applied row to the last, per process or service. */
  cpu?: Record<string, number>
  /** From the consumer host's /metrics: batches, mean size and time inside the function; functionShare = function seconds / drain seconds (> 1 when batches overlap). */
  batches?: { count: number, meanSize: number, meanMs: number, functionSeconds: number, functionShare: number }
}

export interface LagResult {
  targetRate: number
  achievedRate: number
  probes: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** Probes whose value never became visible within the bound. */
  lost: number
  non2xx: number
}

export interface Target { name: string, value: number | undefined, target: number, unit: string, comparison: '>=' | '<=' }

/** --auth: how the sides were set up, and the check timed alone (auth-check.ts). */
export interface AuthInfo {
  /** Sides whose hosts required the token (KVARC_AUTH=required); every side sent it. */
  required: SideName[]
  /** nginx's writes per token a second, on every side. */
  writesPerToken: number
  /** The hosts' token look-up cache (KVARC_TOKEN_CACHE_MS), ms. */
  tokenCacheMs: number
  check?: CheckCost
}

/** The etcd side as it ran (or why it did not), and kvarc's PostgreSQL commit setting for the durability statement next to it. */
export interface EtcdInfo {
  /** Why etcd is not in this run: not installed, did not start. */
  absent?: string
  /** What the member reported at /version. */
  version?: string
  flags?: string[]
  /** SHOW synchronous_commit on the server holding kvarc's database. */
  kvarcSynchronousCommit?: string
}

export interface BenchReport {
  startedAt: string
  finishedAt: string
  machine: { cpus: number, loadavg: number[], node: string }
  options: Record<string, unknown>
  generator: string
  scenarios: ScenarioResult[]
  drain?: DrainResult
  /** PostgreSQL alone applying the drain's rows with the consumer's statement (ceiling.ts): the drain's yardstick. */
  ceiling?: CeilingResult
  lag?: LagResult
  /** Present when the run had --auth. */
  auth?: AuthInfo
  /** Present when etcd was one of the sides. */
  etcd?: EtcdInfo
  targets: Target[]
  errors: string[]
}

function fixed(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return '—'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

function mib(kib: number | undefined): string {
  return kib === undefined ? '—' : (kib / 1024).toFixed(1)
}

export function rpsOf(report: Pick<BenchReport, 'scenarios'>, side: SideName, scenario: Scenario): number | undefined {
  return report.scenarios.find(s => s.side === side && s.scenario === scenario)?.load.rps
}

/** The issue's targets, from a run's figures. */
/** Share of requests that failed (non-2xx or no answer): above 1 % the row measured an outage, not the system. */
export function failedShare(r: ScenarioResult): number {
  return r.load.requests ? (r.load.non2xx + r.load.errors) / r.load.requests : 1
}

function valid(r: ScenarioResult | undefined): boolean {
  return r !== undefined && failedShare(r) <= 0.01
}

export function targets(report: Pick<BenchReport, 'scenarios' | 'drain' | 'ceiling' | 'lag' | 'auth'>): Target[] {
  const ratio = (scenario: Scenario, peer: SideName) => {
    const kvarc = report.scenarios.find(s => s.side === 'kvarc' && s.scenario === scenario)
    const other = report.scenarios.find(s => s.side === peer && s.scenario === scenario)
    return kvarc && other && valid(kvarc) && valid(other) && other.load.rps ? kvarc.load.rps / other.load.rps : undefined
  }
  const auth = report.auth?.required.includes('kvarc') ? ' (auth on)' : ''
  return [
    { name: `GET hit kvarc/baseline${auth}`, value: ratio('get-hit', 'baseline'), target: 0.85, unit: '×', comparison: '>=' },
    { name: `PUT kvarc/baseline${auth}`, value: ratio('put', 'baseline'), target: 0.85, unit: '×', comparison: '>=' },
    { name: `GET hit kvarc/etcd${auth}`, value: ratio('get-hit', 'etcd'), target: 1.5, unit: '×', comparison: '>=' },
    { name: `PUT kvarc/etcd${auth}`, value: ratio('put', 'etcd'), target: 1.0, unit: '×', comparison: '>=' },
    { name: 'drain ÷ PostgreSQL alone', value: report.drain && report.ceiling ? report.drain.writesPerSecond / report.ceiling.writesPerSecond : undefined, target: 0.5, unit: '×', comparison: '>=' },
    { name: 'visibility lag p99', value: report.lag?.p99Ms, target: 250, unit: 'ms', comparison: '<=' },
  ]
}

export function meets(target: Target): boolean | undefined {
  if (target.value === undefined) return undefined
  return target.comparison === '>=' ? target.value >= target.target : target.value <= target.target
}

export function scenarioTable(results: ScenarioResult[]): string {
  const lines = [
    '| scenario | side | req/s | p50 ms | p99 ms | non-2xx | errors | requests | note |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ]
  for (const r of results) {
    const note = [r.writesPerRequest && r.writesPerRequest > 1 ? `req/s counts batches of ${r.writesPerRequest} writes` : undefined, r.note].filter(Boolean).join('; ')
    lines.push(`| ${r.scenario} | ${r.side} | ${fixed(r.load.rps)} | ${fixed(r.load.p50Ms, 2)} | ${fixed(r.load.p99Ms, 2)} | ${fixed(r.load.non2xx)} | ${fixed(r.load.errors)} | ${fixed(r.load.requests)} | ${note} |`)
  }
  return lines.join('\n')
}

/** What a write-outcome run (put-wait, put-if-match) ended in, from its answers. */
export interface WriteOutcomes {
  scenario: Scenario
  connections: number | undefined
  /** PUTs answered 200 "applied", per second of the measured run. */
  appliedPerSecond: number
  /** Time to applied: put-if-match times its applied PUTs alone; put-wait has wrk's latency of every answer (nearly all of them applied). */
  p50Ms: number | undefined
  p99Ms: number | undefined
  timed: 'applied PUTs' | 'every answer'
  applied: number
  /** 202: the wait ran out before the consumer applied the write. */
  queued: number
  /** 412 straight from the API (the cache already showed a newer version), and 412 "rejected" by the consumer under the row lock. */
  refusedAtApi: number
  rejected: number
  /** Any other answer: a 200 "superseded", a GET that was not 200, a 5xx… by label. */
  other: Record<string, number>
  /** Requests that got no answer (socket errors, timeouts). */
  noAnswer: number
}

export function writeOutcomes(r: ScenarioResult): WriteOutcomes {
  const o = r.load.outcomes ?? {}
  const other: Record<string, number> = {}
  for (const [label, n] of Object.entries(o)) {
    if (!['200 applied', '202 queued', '412', '412 rejected', 'GET 200'].includes(label)) other[label] = n
  }
  const applied = o['200 applied'] ?? 0
  const buckets = r.load.appliedBuckets
  const rmw = r.scenario === 'put-if-match'
  return {
    scenario: r.scenario,
    connections: r.connections,
    appliedPerSecond: r.load.seconds > 0 ? applied / r.load.seconds : 0,
    p50Ms: rmw ? bucketPercentile(buckets, 50) : r.load.p50Ms,
    p99Ms: rmw ? bucketPercentile(buckets, 99) : r.load.p99Ms,
    timed: rmw ? 'applied PUTs' : 'every answer',
    applied,
    queued: o['202 queued'] ?? 0,
    refusedAtApi: o['412'] ?? 0,
    rejected: o['412 rejected'] ?? 0,
    other,
    noAnswer: r.load.errors,
  }
}

/**
 * kvarc's write-outcome scenarios, each next to kvarc's plain PUT of the same
 * run: the baseline has no such feature, so there is no baseline ratio.
 */
export function writeOutcomesTable(results: ScenarioResult[]): string {
  const rows = results.filter(r => r.side === 'kvarc' && WRITE_OUTCOME_SCENARIOS.includes(r.scenario))
  if (rows.length === 0) return ''
  const put = results.find(r => r.side === 'kvarc' && r.scenario === 'put')
  const plain = put ? `${fixed(put.load.rps)} (${fixed(put.load.p50Ms, 2)} / ${fixed(put.load.p99Ms, 2)})` : 'not run'
  const lines = [
    '| scenario | connections | applied/s | time to applied p50 ms | p99 ms | 200 applied | 202 queued | 412 at the API | 412 rejected | other answers | no answer | applied/s ÷ plain PUT req/s | kvarc plain PUT req/s (p50 / p99 ms), same run |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|',
  ]
  for (const r of rows) {
    const w = writeOutcomes(r)
    const other = Object.entries(w.other).map(([label, n]) => `${label}: ${fixed(n)}`).join(', ') || '0'
    const share = put?.load.rps ? `${(w.appliedPerSecond / put.load.rps).toFixed(2)}×` : '—'
    lines.push(`| ${w.scenario} | ${w.connections ?? '—'} | ${fixed(w.appliedPerSecond)} | ${fixed(w.p50Ms, 2)} | ${fixed(w.p99Ms, 2)} | ${fixed(w.applied)} | ${fixed(w.queued)} | ${fixed(w.refusedAtApi)} | ${fixed(w.rejected)} | ${other} | ${fixed(w.noAnswer)} | ${share} | ${plain} |`)
  }
  return lines.join('\n')
}

/** What a batch scenario achieved: accepted batches and the writes they carried, per second. */
export interface BatchFigures {
  scenario: Scenario
  writesPerBatch: number
  /** Batches answered 2xx (every op queued), per second of the measured run. */
  batchesPerSecond: number
  writesPerSecond: number
  p50Ms: number
  p99Ms: number
  /** Batches answered otherwise (none or only some of their ops queued), and requests with no answer. */
  non2xx: number
  noAnswer: number
  /** The slowest round's wait for the consumer to apply what was left when wrk stopped. */
  queueEmptySeconds: number | undefined
  /** Accepted writes over the measured time plus every round's catch-up: what the consumer sustained end to end (undefined when a round never finished). */
  appliedWritesPerSecond: number | undefined
  unfinished: string | undefined
}

export function batchFigures(r: ScenarioResult): BatchFigures {
  const writesPerBatch = r.writesPerRequest ?? 1
  const accepted = Math.max(0, r.load.requests - r.load.non2xx)
  const batchesPerSecond = r.load.seconds > 0 ? accepted / r.load.seconds : 0
  const catchUp = r.queueEmptySeconds
  const appliedWritesPerSecond = catchUp?.length && r.load.seconds > 0 && !r.unfinished
    ? (accepted * writesPerBatch) / (r.load.seconds + catchUp.reduce((a, b) => a + b, 0))
    : undefined
  return {
    scenario: r.scenario,
    writesPerBatch,
    batchesPerSecond,
    writesPerSecond: batchesPerSecond * writesPerBatch,
    p50Ms: r.load.p50Ms,
    p99Ms: r.load.p99Ms,
    non2xx: r.load.non2xx,
    noAnswer: r.load.errors,
    queueEmptySeconds: catchUp?.length ? Math.max(...catchUp) : undefined,
    appliedWritesPerSecond,
    unfinished: r.unfinished,
  }
}

/**
 * kvarc's batch scenarios next to kvarc's single PUT of the same run: writes/s
 * through batches against PUT req/s (one write each). No baseline: it has no
 * batch endpoint.
 */
export function batchTable(results: ScenarioResult[]): string {
  const rows = results.filter(r => r.side === 'kvarc' && BATCH_SCENARIOS.includes(r.scenario))
  if (rows.length === 0) return ''
  const put = results.find(r => r.side === 'kvarc' && r.scenario === 'put')
  const plain = put ? `${fixed(put.load.rps)} (${fixed(put.load.p50Ms, 2)} / ${fixed(put.load.p99Ms, 2)})` : 'not run'
  const worst = (seconds: number[] | undefined) => (seconds?.length ? Math.max(...seconds).toFixed(1) : '—')
  const lines = [
    '| scenario | writes per batch | batches/s | writes/s | p50 ms | p99 ms | non-2xx | no answer | applied after s | applied writes/s | writes/s ÷ PUT req/s | kvarc PUT req/s (p50 / p99 ms), same run | PUT applied after s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|',
  ]
  for (const r of rows) {
    const b = batchFigures(r)
    const share = put?.load.rps ? `${(b.writesPerSecond / put.load.rps).toFixed(2)}×` : '—'
    const after = b.unfinished ? `not within ${worst(r.queueEmptySeconds)} (${b.unfinished} then)` : worst(r.queueEmptySeconds)
    lines.push(`| ${b.scenario} | ${b.writesPerBatch} | ${fixed(b.batchesPerSecond)} | ${fixed(b.writesPerSecond)} | ${fixed(b.p50Ms, 2)} | ${fixed(b.p99Ms, 2)} | ${fixed(b.non2xx)} | ${fixed(b.noAnswer)} | ${after} | ${fixed(b.appliedWritesPerSecond)} | ${share} | ${plain} | ${worst(put?.queueEmptySeconds)} |`)
  }
  return lines.join('\n')
}

/** Per side and process: RSS before the side's first scenario and after its last, and the peak seen. */
export function rssTable(results: ScenarioResult[]): string {
  const lines = ['| side | process | pid | RSS before MiB | RSS after MiB | peak MiB |', '|---|---|---:|---:|---:|---:|']
  const sides = [...new Set(results.map(r => r.side))]
  for (const side of sides) {
    const runs = results.filter(r => r.side === side)
    const seen = new Map<number, { name: string, before?: number, after?: number, peak: number }>()
    for (const run of runs) {
      for (const p of run.rssBefore) {
        const entry = seen.get(p.pid) ?? { name: p.name, before: p.kib, peak: 0 }
        entry.peak = Math.max(entry.peak, p.kib ?? 0)
        seen.set(p.pid, entry)
      }
      for (const p of run.rssAfter) {
        const entry = seen.get(p.pid) ?? { name: p.name, peak: 0 }
        entry.after = p.kib
        entry.peak = Math.max(entry.peak, p.kib ?? 0)
        seen.set(p.pid, entry)
      }
    }
    // Children that came and went (sandbox's process per request) collapse into one row per parent.
    const firstPids = new Set(runs[0]!.rssBefore.map(p => p.pid))
    const lastPids = new Set(runs[runs.length - 1]!.rssAfter.map(p => p.pid))
    const transient = new Map<string, { count: number, peak: number }>()
    for (const [pid, e] of seen) {
      if (e.name.includes('/') && !(firstPids.has(pid) && lastPids.has(pid))) {
        const parent = e.name.slice(0, e.name.indexOf('/'))
        const t = transient.get(parent) ?? { count: 0, peak: 0 }
        t.count++
        t.peak = Math.max(t.peak, e.peak)
        transient.set(parent, t)
        continue
      }
      lines.push(`| ${side} | ${e.name} | ${pid} | ${mib(e.before)} | ${mib(e.after)} | ${mib(e.peak)} |`)
    }
    for (const [parent, t] of transient) lines.push(`| ${side} | ${parent}/… ${t.count} short-lived children seen | — | — | — | ${mib(t.peak)} |`)
  }
  return lines.join('\n')
}

export function targetLines(list: Target[]): string {
  return list.map(t => {
    const ok = meets(t)
    const shown = t.unit === '×' ? `${fixed(t.value, 2)}×` : `${fixed(t.value, t.unit === 'ms' ? 1 : 0)} ${t.unit}`
    const goal = t.unit === '×' ? `${t.target}×` : `${fixed(t.target)} ${t.unit}`
    return `- ${t.name}: ${shown} (target ${t.comparison} ${goal}) ${ok === undefined ? 'NOT MEASURED' : ok ? 'MET' : 'MISSED'}`
  }).join('\n')
}

export function markdown(report: BenchReport): string {
  const parts = [
    `# kvarc bench ${report.startedAt}`,
    '',
    `${report.machine.cpus} CPUs, load average at start ${report.machine.loadavg.map(l => l.toFixed(2)).join(' ')}, node ${report.machine.node}; generator: ${report.generator}`,
    `options: ${JSON.stringify(report.options)}`,
    authLine(report.auth),
    '',
    `## Scenarios (through nginx${report.scenarios.some(r => r.side === 'etcd') ? '; etcd directly' : ''})`,
    '',
    scenarioTable(report.scenarios),
    '',
  ]
  const outcomes = writeOutcomesTable(report.scenarios)
  if (outcomes) {
    parts.push('## Write outcomes (kvarc only: the baseline has no such feature)', '',
      `put-wait: PUT as in the plain PUT scenario plus \`Prefer: wait=${PREFER_WAIT_SECONDS}\`, so its latency is the time to applied (wrk's, over every answer). ` +
      `put-if-match: read-modify-write at half the connections, each on its own keys: GET the ETag, PUT with If-Match and \`Prefer: wait=${PREFER_WAIT_SECONDS}\`; applied/s counts the conditional writes that applied, timed from the PUT alone. ` +
      'No other connection writes those keys: a 412 there means the ETag a GET returned was already out of date.', '',
      outcomes, '')
  }
  const batches = batchTable(report.scenarios)
  if (batches) {
    parts.push('## Batches (kvarc only: the baseline has no batch endpoint)', '',
      'POST /api/batch, each request a batch of puts on keys of its own (batch-atomic: `"atomic": true`, one version and one transaction per batch), no `Prefer`. ' +
      'writes/s counts the writes of batches answered 200, that is queued durably, as PUT\'s req/s counts PUTs; ' +
      '"applied after" is how long kvarc then needed to finish (apply what was still queued or held by the consumer, and repair the cache entries it had noted when a cache update failed; the slowest round), ' +
      'and applied writes/s spreads the accepted writes over the measured time plus that catch-up (every round\'s): what the record absorbed end to end.', '',
      batches, '')
  }
  parts.push(
    '## Where the CPU went during each measured run (per request; "other load" is the machine\'s busy time nobody in the bench accounts for)',
    '',
    cpuTable(report.scenarios),
    '',
    '## Resident memory (VmRSS)',
    '',
    rssTable(report.scenarios),
    '',
  )
  if (report.drain) {
    const d = report.drain
    parts.push('## Drain', '',
      (d.via === 'api'
        ? `${fixed(d.messages)} writes queued by PUTs through the front door in ${d.publishSeconds.toFixed(2)} s (${fixed(d.publishRate)}/s), as ${fixed(d.queuedMessages)} messages (${(d.messages / Math.max(1, d.queuedMessages)).toFixed(1)} writes per message), while the consumer host was stopped; `
        : `${fixed(d.messages)} one-write messages published with confirms in ${d.publishSeconds.toFixed(2)} s (${fixed(d.publishRate)}/s) while the consumer host was stopped; `) +
      `consumer start-up ${d.startupSeconds.toFixed(2)} s, then ${fixed(d.rowsApplied)} rows applied in ${d.drainSeconds.toFixed(2)} s: **${fixed(d.writesPerSecond)} writes/s**`, '')
    if (report.ceiling) {
      const c = report.ceiling
      parts.push(`PostgreSQL alone, the same rows with the consumer's statement in batches of ${fixed(c.batch)}, ${c.connections} at once: ${fixed(c.writesPerSecond)} writes/s; the drain reached **${(d.writesPerSecond / c.writesPerSecond).toFixed(2)}×** of it`, '')
    }
    if (d.batches) {
      const b = d.batches
      parts.push(`Consumer host metrics: ${fixed(b.count)} batches, mean ${fixed(b.meanSize)} writes, mean ${b.meanMs.toFixed(1)} ms inside the function; function time = ${b.functionShare.toFixed(2)}× the drain's wall time`, '')
    }
    if (d.cpu && Object.keys(d.cpu).length) {
      parts.push(`CPU while draining, µs per write: ${Object.entries(d.cpu).map(([name, seconds]) => `${name} ${fixed((seconds * 1e6) / d.rowsApplied, 1)}`).join(', ')}`, '')
    }
  }
  if (report.lag) {
    const l = report.lag
    parts.push('## Visibility lag (PUT acknowledged → GET returns it)', '',
      `at ${fixed(l.achievedRate)} PUT/s (target ${fixed(l.targetRate)}, half the measured PUT maximum): ${fixed(l.probes)} probes, ` +
      `p50 ${l.p50Ms.toFixed(1)} ms, p99 ${l.p99Ms.toFixed(1)} ms, max ${l.maxMs.toFixed(1)} ms, never visible ${l.lost}, non-2xx ${l.non2xx}`, '')
  }
  if (report.auth) parts.push('## Cost of the token check', '', authCostLines(report), '')
  if (report.etcd) parts.push('## etcd, the peer', '', etcdLines(report), '')
  if (report.errors.length) parts.push('## Errors', '', ...report.errors.map(e => `- ${e}`), '')
  const etcdRatios = ratioLines(report, 'etcd')
  parts.push(`## kvarc / baseline${etcdRatios ? ', kvarc / etcd' : ''} and targets`, '', ratioLines(report), ...(etcdRatios ? [etcdRatios] : []), targetLines(report.targets), '')
  return parts.join('\n')
}

function cpuTable(results: ScenarioResult[]): string {
  const lines = [
    '| scenario | side | side processes µs/req | PostgreSQL µs/req | Redis µs/req | RabbitMQ µs/req | wrk µs/req | other load µs/req | machine busy | CPU s per process |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---|',
  ]
  for (const r of results) {
    const n = r.load.requests
    const per = (seconds: number | undefined) => n && seconds !== undefined ? fixed((seconds * 1e6) / n, 1) : '—'
    const own = Object.values(r.cpu).reduce((a, b) => a + b, 0)
    const s = r.services ?? {}
    const known = own + (s['postgres (own db)'] ?? 0) + (s['redis-server'] ?? 0) + (s.rabbitmq ?? 0) + (s.wrk ?? 0)
    const busy = s['machine busy']
    const other = busy === undefined ? undefined : Math.max(0, busy - known)
    const share = busy === undefined || !r.load.seconds ? '—' : `${fixed((100 * busy) / r.load.seconds, 0)} % of 1 core`
    lines.push(`| ${r.scenario} | ${r.side} | ${per(own)} | ${per(s['postgres (own db)'])} | ${per(s['redis-server'])} | ${per(s.rabbitmq)} | ${per(s.wrk)} | ${per(other)} | ${share} | ${Object.entries(r.cpu).map(([name, sec]) => `${name} ${sec.toFixed(2)}`).join(', ')} |`)
  }
  return lines.join('\n')
}

/**
 * CPU µs per request on the request path, in what the bench itself runs for a
 * side: its HTTP processes (hosts or baseline servers, nginx), wrk, and for
 * reads its own PostgreSQL backends. Left out: the consumer host and, for
 * writes, PostgreSQL (applying writes is work the baseline never does), and
 * Redis and RabbitMQ (shared with whatever else runs on the machine, used
 * alike by both sides).
 */
export function requestPathCpu(r: ScenarioResult): number | undefined {
  if (!r.load.requests) return undefined
  const http = Object.entries(r.cpu).filter(([name]) => !/consumer/i.test(name)).reduce((a, [, seconds]) => a + seconds, 0)
  const s = r.services ?? {}
  const reads = r.scenario === 'get-hit' || r.scenario === 'get-miss' || r.scenario === 'all'
  return ((http + (s.wrk ?? 0) + (reads ? s['postgres (own db)'] ?? 0 : 0)) * 1e6) / r.load.requests
}

/**
 * CPU µs per request of everything a side's requests ran on: its processes
 * (kvarc's consumer too) and wrk, and for the sides built on them PostgreSQL
 * (their own backends), Redis and RabbitMQ (shared: anything else they served
 * meanwhile counts as well). etcd keeps its data itself, so its own process
 * is the whole of it: comparing it with kvarc's request path alone would leave
 * out the fsyncs and storage kvarc hands to RabbitMQ, PostgreSQL and Redis.
 */
export function wholeCpu(r: ScenarioResult): number | undefined {
  if (!r.load.requests) return undefined
  const s = r.services ?? {}
  const backing = r.side === 'etcd' ? 0 : (s['postgres (own db)'] ?? 0) + (s['redis-server'] ?? 0) + (s.rabbitmq ?? 0)
  return ((Object.values(r.cpu).reduce((a, b) => a + b, 0) + (s.wrk ?? 0) + backing) * 1e6) / r.load.requests
}

/**
 * kvarc against a peer (the baseline, or etcd) for every scenario both ran:
 * measured req/s, and the inverse ratio of CPU per request, which is what
 * the throughput ratio tends to when the box is CPU-bound and nothing else
 * runs on it (a shared, busy machine moves req/s far more than CPU per
 * request). Against the baseline, which stores through the same services,
 * the request path's CPU; against etcd, everything each side ran on.
 */
export function ratioLines(report: Pick<BenchReport, 'scenarios'>, peer: 'baseline' | 'etcd' = 'baseline'): string {
  const scenarios = [...new Set(report.scenarios.map(s => s.scenario))]
  const [cpuOf, cpuName] = peer === 'etcd' ? [wholeCpu, 'CPU of everything each ran on'] : [requestPathCpu, 'request-path CPU']
  const lines: string[] = []
  for (const scenario of scenarios) {
    const label = peer === 'baseline' ? scenario : `${scenario}, kvarc / ${peer}`
    const kvarc = report.scenarios.find(s => s.side === 'kvarc' && s.scenario === scenario)
    const other = report.scenarios.find(s => s.side === peer && s.scenario === scenario)
    if (!kvarc || !other || !other.load.rps) continue
    if (!valid(kvarc) || !valid(other)) {
      lines.push(`- ${label}: not comparable: ${[kvarc, other].filter(r => !valid(r)).map(r => `${r.side} had ${(100 * failedShare(r)).toFixed(0)} % failed requests`).join(', ')}`)
      continue
    }
    const kc = cpuOf(kvarc)
    const oc = cpuOf(other)
    const cpu = kc && oc ? `; ${cpuName} ${fixed(kc)} vs ${fixed(oc)} µs/req → ${(oc / kc).toFixed(2)}× if CPU-bound` : ''
    lines.push(`- ${label}: ${fixed(kvarc.load.rps)} / ${fixed(other.load.rps)} req/s = ${(kvarc.load.rps / other.load.rps).toFixed(2)}×${cpu}`)
  }
  return lines.join('\n')
}

/**
 * How etcd ran, or why it did not, and what an acknowledged write means on
 * each side: both fsync before they answer.
 */
export function etcdLines(report: Pick<BenchReport, 'etcd' | 'auth'>): string {
  const etcd = report.etcd
  if (!etcd) return ''
  if (etcd.absent) return `etcd did not run: ${etcd.absent}. Its rows, ratios and targets are missing from this report.`
  const commit = etcd.kvarcSynchronousCommit === undefined ? 'synchronous_commit (not read in this run)' : `synchronous_commit = ${etcd.kvarcSynchronousCommit} (SHOW synchronous_commit on this server)`
  return [
    `etcd ${etcd.version ?? '(version unknown)'}, one member the bench started itself: \`etcd ${(etcd.flags ?? []).join(' ')}\`, every other setting etcd's default. ` +
      'It runs get-hit and put in the same rounds, with the same wrk, connections and durations as the other sides, on the same keys (hit-<i>, loaded before the runs, and put-<i>) and the same value bytes, ' +
      'base64 in the JSON of its v3 gateway (POST /v3/kv/range, its default linearizable read, and POST /v3/kv/put), ' +
      'which hands each request on to etcd\'s gRPC server inside the same process: etcd\'s own clients speak gRPC and skip that step. ' +
      'wrk reaches it directly, not through nginx: kvarc and the baseline are two processes each behind nginx, etcd is one server that uses both cores itself, so nginx would only add a hop.' +
      (report.auth ? ' Its requests carry no Authorization header: etcd would take it for a token of its own and refuse it.' : ''),
    '',
    'Durability: both answer a write only once it is on disk. ' +
      'etcd appends the put to its write-ahead log and fsyncs it before it answers (its default: the flags above have no --unsafe-no-fsync, a flag that only exists from etcd 3.5 on). ' +
      'kvarc answers a PUT once RabbitMQ has confirmed the persistent message on its durable quorum queue, which RabbitMQ does only after fsyncing its log; ' +
      `its consumer then writes the row to PostgreSQL, which commits with ${commit}. ` +
      'Each batches the writes arriving together into one fsync. ' +
      'What differs is when the write can be read: etcd\'s at once, kvarc\'s once its consumer applied it (the visibility lag).',
  ].join('\n')
}

/** One line under the options: whether requests carried a token, and what that means for each side. */
export function authLine(auth: AuthInfo | undefined): string {
  if (!auth) return 'auth: off (no Authorization header; the hosts run with KVARC_AUTH=off)'
  const required = auth.required.length ? auth.required.join(' and ') : 'no side'
  return `auth: ON: ${required} required \`Authorization: Bearer <token>\` (KVARC_AUTH=required, one token with readwrite on every key, ` +
    `look-ups cached by each host for ${fixed(auth.tokenCacheMs)} ms); every request of every side sent \`Authorization: Bearer\` with a token of the same length, ` +
    `so the bytes on the wire match (the baseline and kvarc-noauth ignore it); nginx's per-token write limit is ${fixed(auth.writesPerToken)}/s on every side, so the limiter runs but never refuses`
}

/** The hosts' own CPU: a side's processes but nginx and the consumer. */
export function hostCpu(r: ScenarioResult): number | undefined {
  if (!r.load.requests) return undefined
  const seconds = Object.entries(r.cpu).filter(([name]) => !/consumer|nginx/i.test(name)).reduce((a, [, s]) => a + s, 0)
  return (seconds * 1e6) / r.load.requests
}

/**
 * kvarc with auth required against the same stack with auth off, in the same
 * run and the same header: req/s and latency, and the difference in CPU per
 * request (request path, and the hosts alone, where the check runs); then the
 * check timed alone in the bench's process.
 */
export function authCostLines(report: Pick<BenchReport, 'scenarios' | 'auth'>): string {
  const lines: string[] = []
  const signed = (v: number) => `${v >= 0 ? '+' : '−'}${fixed(Math.abs(v), 1)}`
  const pair = (a: number | undefined, b: number | undefined, unit: string) =>
    a === undefined || b === undefined ? '—' : `${fixed(a, 1)} / ${fixed(b, 1)} ${unit} (${signed(a - b)})`
  for (const scenario of [...new Set(report.scenarios.map(s => s.scenario))]) {
    const on = report.scenarios.find(s => s.side === 'kvarc' && s.scenario === scenario)
    const off = report.scenarios.find(s => s.side === 'kvarc-noauth' && s.scenario === scenario)
    if (!on || !off) continue
    if (!valid(on) || !valid(off)) {
      lines.push(`- ${scenario}: not comparable: ${[on, off].filter(r => !valid(r)).map(r => `${r.side} had ${(100 * failedShare(r)).toFixed(0)} % failed requests`).join(', ')}`)
      continue
    }
    const ratio = off.load.rps ? `${(on.load.rps / off.load.rps).toFixed(2)}×` : '—'
    const base = report.scenarios.find(s => s.side === 'baseline' && s.scenario === scenario)
    const vsBase = base && valid(base) && base.load.rps
      ? `; against the baseline's ${fixed(base.load.rps)} req/s: auth ${(on.load.rps / base.load.rps).toFixed(2)}×, no auth ${(off.load.rps / base.load.rps).toFixed(2)}×`
      : ''
    lines.push(`- ${scenario}, kvarc auth / no auth: ${fixed(on.load.rps)} / ${fixed(off.load.rps)} req/s = ${ratio}; ` +
      `p50 ${fixed(on.load.p50Ms, 2)} / ${fixed(off.load.p50Ms, 2)} ms, p99 ${fixed(on.load.p99Ms, 2)} / ${fixed(off.load.p99Ms, 2)} ms; ` +
      `CPU per request: request path ${pair(requestPathCpu(on), requestPathCpu(off), 'µs')}, HTTP hosts ${pair(hostCpu(on), hostCpu(off), 'µs')}${vsBase}`)
  }
  if (lines.length === 0) lines.push('- kvarc-noauth did not run (it runs get-hit and put next to kvarc when kvarc is one of the sides): no end-to-end comparison')
  const check = report.auth?.check
  if (check) {
    lines.push(`- the check alone (authenticate() with the look-up cached, then requireAccess(), in the bench's process, median of ${check.batches} × ${fixed(check.calls)} calls): ` +
      `${fixed(check.requiredUs, 2)} µs with auth required, ${fixed(check.offUs, 2)} µs with auth off: **${fixed(check.costUs, 2)} µs per request**`)
  }
  return lines.join('\n')
}

/** Progress on stderr: a line rewritten in place on a terminal, plain lines otherwise. */
export class Progress {
  private live = false
  private readonly start: number
  constructor(private readonly out: Pick<NodeJS.WriteStream, 'write' | 'isTTY'> = process.stderr, private readonly clock: () => number = Date.now) {
    this.start = clock()
  }

  private stamp(): string {
    return `[${((this.clock() - this.start) / 1000).toFixed(0).padStart(4)} s]`
  }

  line(text: string): void {
    if (this.live) this.out.write('\r\x1b[K')
    this.live = false
    this.out.write(`${this.stamp()} ${text}\n`)
  }

  /** A status that changes often (a countdown): rewritten on a TTY, skipped otherwise. */
  status(text: string): void {
    if (!this.out.isTTY) return
    this.out.write(`\r\x1b[K${this.stamp()} ${text}`)
    this.live = true
  }
}
