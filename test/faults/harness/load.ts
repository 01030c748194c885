/**
 * Write load for the fault suite: several clients, each on its own keep-alive
 * connection, doing PUT/DELETE on a shared (overlapping) key set, and recording
 * every write with its outcome. A 200 is an acknowledged write (it carries its
 * version); a 5xx or no answer is an unknown outcome (the write may or may not
 * have been queued); a 4xx is a rejection (it can never apply, and valid input
 * should never get one). Values are unique per write, so a row in the record
 * names the write it came from.
 */
import type http from 'node:http'
import { keepAliveAgent, request, versionOf } from './client.js'

export type WriteKind = 'put' | 'delete'

export interface WriteRecord {
  /** Which load client sent it (each client has one write in flight at a time); -1 for the probe. */
  client: number
  key: string
  kind: WriteKind
  /** The PUT's value; null for a DELETE. */
  value: string | null
  status: number
  /** The version a 200 answered with. */
  version?: string
  sentAt: number
  doneAt: number
  retryAfter?: string
  error?: string
}

export type Outcome = 'acknowledged' | 'unknown' | 'rejected'

export function outcomeOf(record: WriteRecord): Outcome {
  if (record.status === 200 && record.version !== undefined) return 'acknowledged'
  if (record.status >= 400 && record.status < 500) return 'rejected'
  return 'unknown'
}

export interface LoadOptions {
  url: string
  clients: number
  keys: readonly string[]
  /** Share of writes that are DELETEs (0..1). */
  deleteRatio: number
  /** A request without an answer after this long counts as unknown outcome. */
  timeoutMs: number
  /** Stop issuing once this many writes were sent (over all clients). */
  maxWrites?: number
  /** Pause between one client's writes, to hold the rate below saturation on a shared machine. */
  pauseMs?: number
  /** After a failed write a client backs off this long (a polite client; also keeps 503 storms bounded). */
  backoffMs?: number
  /** Clients doing GET /api?key on the same keys (fills and hits race the consumers' cache updates). */
  readers?: number
  /** Distinguishes this run's values from any other's. */
  runId: string
  random?: () => number
}

export interface LoadCounts { sent: number, acknowledged: number, unknown: number, rejected: number }

/** GET outcomes: found/not found by source, and failures (a 5xx or no answer). */
export interface ReadCounts { redis: number, postgres: number, notFound: number, failed: number, failures: string[], maxMs: number }

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/** A small slice of non-ASCII text, so every run also checks UTF-8 round trips under faults. */
const UNICODE = ['', 'é', '漢字', '🙂', 'Ω≈ç']

export class LoadRun {
  readonly records: WriteRecord[] = []
  readonly reads: ReadCounts = { redis: 0, postgres: 0, notFound: 0, failed: 0, failures: [], maxMs: 0 }
  private readonly agent: http.Agent
  private readonly base: URL
  private running = false
  private loops: Promise<void>[] = []
  private sent = 0

  constructor(private readonly options: LoadOptions) {
    this.agent = keepAliveAgent(options.clients + (options.readers ?? 0))
    this.base = new URL(options.url)
  }

  start(): void {
    if (this.running) return
    this.running = true
    for (let client = 0; client < this.options.clients; client++) this.loops.push(this.loop(client))
    for (let reader = 0; reader < (this.options.readers ?? 0); reader++) this.loops.push(this.readLoop())
  }

  /** Stops issuing new writes and waits for the ones in flight to answer (each is bounded by timeoutMs). */
  async stop(): Promise<void> {
    this.running = false
    await Promise.all(this.loops)
    this.loops = []
    this.agent.destroy()
  }

  get done(): boolean {
    return this.options.maxWrites !== undefined && this.sent >= this.options.maxWrites
  }

  counts(since = 0): LoadCounts {
    const counts: LoadCounts = { sent: 0, acknowledged: 0, unknown: 0, rejected: 0 }
    for (const record of this.records) {
      if (record.sentAt < since) continue
      counts.sent++
      counts[outcomeOf(record)]++
    }
    return counts
  }

  private async loop(client: number): Promise<void> {
    const random = this.options.random ?? Math.random
    let seq = 0
    while (this.running && !this.done) {
      this.sent++
      const key = this.options.keys[Math.floor(random() * this.options.keys.length)] as string
      const kind: WriteKind = random() < this.options.deleteRatio ? 'delete' : 'put'
      const value = kind === 'put' ? `${this.options.runId}:${client}:${seq}${UNICODE[seq % UNICODE.length]}` : null
      seq++
      const record = await this.write(client, key, kind, value)
      this.records.push(record)
      if (record.status !== 200) await sleep(this.options.backoffMs ?? 50)
      else if (this.options.pauseMs) await sleep(this.options.pauseMs)
    }
  }

  private async readLoop(): Promise<void> {
    const random = this.options.random ?? Math.random
    while (this.running && !this.done) {
      const key = this.options.keys[Math.floor(random() * this.options.keys.length)] as string
      const sentAt = Date.now()
      const answer = await request(this.base, { agent: this.agent, method: 'GET', path: `/api?key=${encodeURIComponent(key)}`, timeoutMs: this.options.timeoutMs })
      this.reads.maxMs = Math.max(this.reads.maxMs, Date.now() - sentAt)
      if (answer.status === 404) this.reads.notFound++
      else if (answer.status === 200) {
        const source = (JSON.parse(answer.body) as { source?: string }).source
        if (source === 'redis') this.reads.redis++
        else this.reads.postgres++
      } else {
        this.reads.failed++
        if (this.reads.failures.length < 5) this.reads.failures.push(`${answer.status} ${answer.error ?? answer.body.slice(0, 120)}`)
        await sleep(this.options.backoffMs ?? 50)
      }
      await sleep(this.options.pauseMs ?? 0)
    }
  }

  private async write(client: number, key: string, kind: WriteKind, value: string | null): Promise<WriteRecord> {
    const sentAt = Date.now()
    const answer = kind === 'put'
      ? await request(this.base, { agent: this.agent, method: 'PUT', path: '/api', body: JSON.stringify({ key, value }), timeoutMs: this.options.timeoutMs })
      : await request(this.base, { agent: this.agent, method: 'DELETE', path: `/api?key=${encodeURIComponent(key)}`, timeoutMs: this.options.timeoutMs })
    const record: WriteRecord = { client, key, kind, value, status: answer.status, sentAt, doneAt: Date.now() }
    const version = versionOf(answer)
    if (version !== undefined) record.version = version
    if (answer.retryAfter !== undefined) record.retryAfter = answer.retryAfter
    if (answer.error !== undefined) record.error = answer.error
    else if (answer.status !== 200) record.error = answer.body.slice(0, 200)
    return record
  }
}

/** Waits until `check()` holds, polling every 50 ms; false when `timeoutMs` passed first. */
export async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await sleep(50)
  }
  return true
}
