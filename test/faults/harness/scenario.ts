/**
 * One fault, end to end: write load on a fresh key set, the fault injected
 * (and undone) while the load runs, a probe measuring how long until a new
 * write is both acknowledged and applied again, then load stops, the queues
 * drain and the verifier compares every key with what the clients were told.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { waitDrained } from '../../../ops/drained.js'
import { keepAliveAgent, request, versionOf } from './client.js'
import { readCache, readRows, takeDeadLetters, waitCacheRepaired } from './inspect.js'
import { LoadRun, until, type ReadCounts, type WriteRecord } from './load.js'
import { clean, verify, type Verdict } from './verify.js'

/** What a scenario needs of a running stack, and of the real services behind it (not any proxy). */
export interface Target {
  /** The stack's public URL (nginx). */
  url: string
  databaseUrl: string
  redisUrl: string
  amqpUrl: string
  addQueue: string
  delQueue: string
  cachePrefix: string
  /** The stack's consumer hosts (their /ready tells what they still hold); none when unknown. */
  consumerUrls?: () => string[]
}

export interface Fault {
  name: string
  /** Injects the fault; resolves once it is in effect (the process is gone, the service stopped). */
  inject(): Promise<void>
  /** How long the fault stays in effect under load. */
  holdMs: number
  /** Undoes it (starts what was stopped); resolves once done. Runs even when inject failed. */
  undo(): Promise<void>
}

export interface ScenarioOptions {
  clients: number
  /** GET clients on the same keys. */
  readers: number
  keys: number
  deleteRatio: number
  /** Acknowledged writes before the fault. */
  warmWrites: number
  /** Acknowledged writes after the fault was undone, before load stops. */
  afterWrites: number
  /** Pause between one client's writes (ms). */
  pauseMs: number
  requestTimeoutMs: number
  /** Bound on each waiting phase. */
  phaseTimeoutMs: number
  drainTimeoutMs: number
}

export const FAST: ScenarioOptions = {
  clients: 6, readers: 2, keys: 150, deleteRatio: 0.25, warmWrites: 400, afterWrites: 400, pauseMs: 2,
  requestTimeoutMs: 10_000, phaseTimeoutMs: 20_000, drainTimeoutMs: 30_000,
}

export const FULL: ScenarioOptions = {
  clients: 12, readers: 4, keys: 400, deleteRatio: 0.25, warmWrites: 5000, afterWrites: 5000, pauseMs: 0,
  requestTimeoutMs: 20_000, phaseTimeoutMs: 120_000, drainTimeoutMs: 180_000,
}

export interface ScenarioResult {
  fault: string
  verdict: Verdict
  /** Write requests that got no 200 during the run, and the span they covered. */
  failedWrites: number
  unavailableMs: number
  /** Injection → a new write acknowledged AND applied to PostgreSQL again. */
  recoverMs: number
  /** Load stopped → queues empty. */
  drainMs: number
  /** Slowest write answer of the run: no request may hang. */
  maxWriteMs: number
  deadLetters: number
  reads: ReadCounts
  /** The failed writes' answers: statuses, how many carried Retry-After, how fast they came. */
  refusals: { statuses: Record<string, number>, retryAfter: number, p50Ms: number, maxMs: number }
  /** How long injecting took (e.g. rabbitmqctl stop_app) and undoing it (start_app until the service answers). */
  injectMs: number
  holdMs: number
  undoMs: number
  faultError?: string
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/**
 * Probes recovery: one PUT at a time on its own key; once one is acknowledged,
 * waits until PostgreSQL holds it. Resolves with the time that happened.
 * Records its writes like any client's, so they are verified too.
 */
async function probeRecovery(target: Target, key: string, records: WriteRecord[], stop: () => boolean, timeoutMs: number): Promise<number | undefined> {
  const agent = keepAliveAgent(1)
  const base = new URL(target.url)
  const deadline = Date.now() + timeoutMs
  let db: pg.Client | undefined
  try {
    for (let i = 0; Date.now() < deadline && !stop(); i++) {
      const value = `probe:${i}`
      const sentAt = Date.now()
      const answer = await request(base, { agent, method: 'PUT', path: '/api', body: JSON.stringify({ key, value }), timeoutMs: 15_000 })
      const version = versionOf(answer)
      records.push({ client: -1, key, kind: 'put', value, status: answer.status, sentAt, doneAt: Date.now(), ...(version ? { version } : {}), ...(answer.error ? { error: answer.error } : {}), ...(answer.retryAfter ? { retryAfter: answer.retryAfter } : {}) })
      if (!version) {
        await sleep(100)
        continue
      }
      while (Date.now() < deadline && !stop()) {
        try {
          if (!db) {
            db = new pg.Client({ connectionString: target.databaseUrl, connectionTimeoutMillis: 2000 })
            db.on('error', () => {})
            await db.connect()
          }
          const { rows } = await db.query<{ version: string }>('SELECT version::text AS version FROM kv_store WHERE key = $1', [key])
          if (rows[0] && BigInt(rows[0].version) >= BigInt(version)) return Date.now()
        } catch {
          await db?.end().catch(() => {})
          db = undefined
        }
        await sleep(50)
      }
    }
    return undefined
  } finally {
    agent.destroy()
    await db?.end().catch(() => {})
  }
}

export async function runScenario(target: Target, fault: Fault, options: ScenarioOptions): Promise<ScenarioResult> {
  const runId = `f-${fault.name}-${randomBytes(3).toString('hex')}`
  const prefix = `${runId}/`
  const keys = Array.from({ length: options.keys }, (_, i) => `${prefix}k${i}`)
  const load = new LoadRun({
    url: target.url, clients: options.clients, readers: options.readers, keys, deleteRatio: options.deleteRatio,
    timeoutMs: options.requestTimeoutMs, pauseMs: options.pauseMs, runId,
  })
  const probeRecords: WriteRecord[] = []
  let faultError: string | undefined
  let injectedAt = 0
  let injectMs = 0
  let undoMs = 0
  let recoveredAt: number | undefined
  load.start()
  try {
    if (!(await until(() => load.counts().acknowledged >= options.warmWrites, options.phaseTimeoutMs))) {
      throw new Error(`${fault.name}: only ${load.counts().acknowledged} writes acknowledged before the fault; the stack is not healthy (${JSON.stringify(load.records.slice(-3))})`)
    }
    let probe: Promise<number | undefined> = Promise.resolve(undefined)
    const injecting = Date.now()
    try {
      await fault.inject()
      injectedAt = Date.now()
      injectMs = injectedAt - injecting
      // Recovery is measured from the moment the fault is in effect, not from when it was asked for.
      probe = probeRecovery(target, `${prefix}probe`, probeRecords, () => false, options.phaseTimeoutMs + fault.holdMs)
      await sleep(fault.holdMs)
    } catch (error) {
      faultError = `inject: ${(error as Error).message}`
    } finally {
      const undoing = Date.now()
      await fault.undo().catch((error: unknown) => { faultError = `${faultError ?? ''} undo: ${(error as Error).message}` })
      undoMs = Date.now() - undoing
    }
    const undoneAt = Date.now()
    recoveredAt = await probe
    const ackedAfter = () => load.records.filter(r => r.sentAt >= undoneAt && r.status === 200).length
    await until(() => ackedAfter() >= options.afterWrites, options.phaseTimeoutMs)
  } finally {
    await load.stop()
  }

  const queues = [target.addQueue, target.delQueue]
  const drainMs = await waitDrained(target.amqpUrl, queues, options.drainTimeoutMs, target.consumerUrls?.())
  await waitCacheRepaired(target.databaseUrl, options.drainTimeoutMs)
  const records = [...load.records, ...probeRecords]
  const rows = await readRows(target.databaseUrl, prefix)
  const cache = await readCache(target.redisUrl, target.cachePrefix, new Set(records.map(r => r.key)))
  const verdict = verify(records, rows, cache)
  const deadLetters = await takeDeadLetters(target.amqpUrl, queues)

  const failed = records.filter(r => r.status !== 200)
  const unavailableMs = failed.length === 0 ? 0 : Math.max(...failed.map(r => r.doneAt)) - Math.min(...failed.map(r => r.sentAt))
  return {
    fault: fault.name,
    verdict,
    failedWrites: failed.length,
    unavailableMs,
    recoverMs: recoveredAt === undefined || injectedAt === 0 ? Number.NaN : recoveredAt - injectedAt,
    drainMs,
    maxWriteMs: Math.max(0, ...records.map(r => r.doneAt - r.sentAt)),
    deadLetters: deadLetters.length,
    reads: load.reads,
    refusals: refusalsOf(failed),
    injectMs,
    holdMs: fault.holdMs,
    undoMs,
    ...(faultError ? { faultError } : {}),
  }
}

function refusalsOf(failed: readonly WriteRecord[]): ScenarioResult['refusals'] {
  const statuses: Record<string, number> = {}
  for (const r of failed) {
    const label = r.status === 0 ? (r.error?.startsWith('no answer') ? 'no answer (client deadline)' : r.error ?? 'connection failed') : String(r.status)
    statuses[label] = (statuses[label] ?? 0) + 1
  }
  const ms = failed.map(r => r.doneAt - r.sentAt).sort((a, b) => a - b)
  return { statuses, retryAfter: failed.filter(r => r.retryAfter !== undefined).length, p50Ms: percentile(ms, 50), maxMs: ms.length ? ms[ms.length - 1] as number : 0 }
}

/**
 * What is wrong with the refused writes of a run where only 503 + Retry-After is
 * acceptable (the broker, or its confirm, was unavailable): other statuses, and
 * 503s without Retry-After. Empty when every refusal was a proper 503.
 */
export function improperRefusals(result: ScenarioResult): string[] {
  const out = Object.entries(result.refusals.statuses).filter(([s]) => s !== '503').map(([s, n]) => `${n}× ${s}`)
  const missing = (result.refusals.statuses['503'] ?? 0) - result.refusals.retryAfter
  if (missing > 0) out.push(`${missing}× 503 without Retry-After`)
  return out
}

/** Passed: nothing lost, resurrected, mismatched or stale; the fault ran; the system recovered; no dead letters. */
export function passed(result: ScenarioResult): boolean {
  return clean(result.verdict) && !result.faultError && Number.isFinite(result.recoverMs) && result.deadLetters === 0 && result.verdict.rejected === 0
}

function refusalText(r: ScenarioResult): string {
  const entries = Object.entries(r.refusals.statuses)
  if (entries.length === 0) return 'none'
  return `${entries.map(([s, n]) => `${n}× ${s}`).join(', ')}; Retry-After on ${r.refusals.retryAfter} (${r.refusals.p50Ms} / ${r.refusals.maxMs})`
}

/** The fault table, markdown. */
export function faultTable(results: readonly ScenarioResult[]): string {
  const s = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : 'never')
  const lines = [
    '| fault | writes acknowledged | unknown outcome (applied) | retried by nginx (applied twice) | writes lost | resurrections | stale cache entries | mismatches | reordered | inject / hold / undo (s) | time to recover (s) | writes refused span (s) | slowest write (s) | drain (s) | reads ok / failed (slowest s) | refused writes: answers (p50 / max ms) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ]
  for (const r of results) {
    const v = r.verdict
    lines.push(`| ${r.fault}${r.faultError ? ' (fault failed: ' + r.faultError + ')' : ''} | ${v.acknowledged} | ${v.unknown} (${v.appliedUnknown}) | ${v.appliedDuplicate} | ${v.lost} | ${v.resurrections} | ${v.staleCache} | ${v.mismatches} | ${v.reordered} | ${s(r.injectMs)} / ${s(r.holdMs)} / ${s(r.undoMs)} | ${s(r.recoverMs)} | ${s(r.unavailableMs)} | ${s(r.maxWriteMs)} | ${s(r.drainMs)} | ${r.reads.redis + r.reads.postgres + r.reads.notFound} / ${r.reads.failed} (${s(r.reads.maxMs)}) | ${refusalText(r)} |`)
  }
  return lines.join('\n')
}
