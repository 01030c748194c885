/**
 * `npm run status`: a terminal view of a running kvarc — hosts up, queue
 * depths, dead letters, keys and tombstones, cache hit ratio, applied/s.
 *
 *   KVARC_URL     the system's front door (nginx), default http://127.0.0.1:8080
 *   KVARC_HOSTS   comma-separated base URLs of individual hosts (HTTP and consumer
 *                 hosts' /health + /metrics ports); their metrics give the rates.
 *                 Default: the hosts a local `npm start` on KVARC_URL's port recorded
 *                 (ops/stack-file.ts), with how often its supervisor restarted each
 *   DATABASE_URL, REDIS_URL, AMQP_URL, KVARC_*   as for the system (src/shared/config.ts)
 *
 *   npm run status            human view
 *   npm run status -- --json  one JSON document, for machines
 *
 * Every probe is bounded by a short timeout; something down is a line that says
 * so, never a stack trace. Exit code 0 whenever a report was printed (whether
 * or not everything is up: `ok` in --json says that; a non-zero code would make
 * npm bury the view under its own error lines), 2 on a usage or configuration error.
 */
import { connect, type ChannelModel } from 'amqplib'
import { Redis } from 'ioredis'
import pg from 'pg'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { countStale } from '../src/shared/cache-repair.js'
import { loadConfig, type Config } from '../src/shared/config.js'
import { deadLetterQueueName } from '../src/shared/queue.js'
import { redactUrl } from './backing-services.js'
import { readStackFile } from './stack-file.js'

export interface Probe {
  ok: boolean
  ms: number
  error?: string
}

export interface HostStatus extends Probe {
  url: string
  role: 'front' | 'host'
  /** The host's own name from /health, when it gave one. */
  name?: string
  uptimeSeconds?: number
  /** Times `npm start`'s supervisor restarted it, when a local npm start recorded it. */
  restarts?: number
}

export interface QueueStatus {
  name: string
  /** Messages ready; null when the queue does not exist (yet). */
  messages: number | null
  consumers: number | null
  deadLetter: boolean
}

export interface StatusReport {
  at: string
  ok: boolean
  hosts: HostStatus[]
  services: {
    postgres: Probe & { url: string, keys?: number, tombstones?: number, cacheRepairs?: number, note?: string }
    redis: Probe & { url: string }
    rabbitmq: Probe & { url: string, queues: QueueStatus[] }
  }
  deadLetters: number | null
  traffic: {
    /** Where the counters came from: the hosts (by name) whose /metrics answered. */
    sources: string[]
    sampleSeconds: number
    cacheHits: number | null
    cacheMisses: number | null
    /** hits / (hits + misses) since the hosts started; null when there were no reads. */
    cacheHitRatio: number | null
    appliedTotal: number | null
    appliedPerSecond: number | null
    /** Messages the consumer hosts hold unacknowledged (buffered or being applied); null without their metrics. */
    heldByConsumers: number | null
    requestsPerSecond: number | null
    note?: string
  }
}

export interface StatusOptions {
  url: string
  hosts: string[]
  config: Config
  /** Time between the two /metrics samples that give the rates. */
  sampleMs?: number
  /** Bound of each probe. */
  timeoutMs?: number
  /** Restart counts by host URL (the front door's too), from the stack file of a local `npm start`. */
  restarts?: Record<string, number>
}

const reason = (error: unknown): string => {
  if (error instanceof AggregateError && error.errors.length) return reason(error.errors[0])
  const e = error as { code?: string, message?: string, cause?: unknown }
  if (e?.cause && (e.message === 'fetch failed' || !e.message)) return reason(e.cause)
  if (e?.code === 'ECONNREFUSED') return 'connection refused'
  if (e?.code === 'ENOTFOUND') return 'host not found'
  if (e?.code === 'ETIMEDOUT' || (error as Error)?.name === 'TimeoutError') return 'no answer in time'
  return e?.message || String(error)
}

function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms) })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

async function timed<T>(work: () => Promise<T>): Promise<{ ok: true, ms: number, value: T } | { ok: false, ms: number, error: string }> {
  const started = performance.now()
  try {
    const value = await work()
    return { ok: true, ms: Math.round(performance.now() - started), value }
  } catch (error) {
    return { ok: false, ms: Math.round(performance.now() - started), error: reason(error) }
  }
}

async function probeHost(url: string, role: HostStatus['role'], timeoutMs: number): Promise<HostStatus> {
  const result = await timed(async () => {
    const response = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } })
    const text = await response.text()
    if (!response.ok) throw new Error(`GET /health answered ${response.status}`)
    try {
      return JSON.parse(text) as { host?: unknown, uptimeSeconds?: unknown }
    } catch {
      throw new Error('GET /health did not answer JSON')
    }
  })
  if (!result.ok) return { url, role, ok: false, ms: result.ms, error: result.error }
  const body = result.value
  return {
    url, role, ok: true, ms: result.ms,
    ...(typeof body.host === 'string' ? { name: body.host } : {}),
    ...(typeof body.uptimeSeconds === 'number' ? { uptimeSeconds: body.uptimeSeconds } : {}),
  }
}

/** Keys and tombstones. A missing database or table means nothing was written yet: zero, with a note. */
async function probePostgres(config: Config, timeoutMs: number): Promise<StatusReport['services']['postgres']> {
  const url = redactUrl(config.databaseUrl)
  let note: string | undefined
  const result = await timed(async () => {
    const client = new pg.Client({ connectionString: config.databaseUrl, connectionTimeoutMillis: timeoutMs, statement_timeout: timeoutMs * 2 })
    client.on('error', () => {})
    try {
      await within(timeoutMs, 'PostgreSQL', client.connect())
      const { rows } = await client.query<{ keys: string, tombstones: string }>(
        'SELECT count(*) FILTER (WHERE NOT deleted) AS keys, count(*) FILTER (WHERE deleted) AS tombstones FROM kv_store')
      // Cache entries a consumer could not update while Redis was away, waiting for repair.
      // (A database from before the table existed has none: nothing is waiting.)
      const cacheRepairs = await countStale(client).catch(() => 0)
      return { keys: Number(rows[0]?.keys ?? 0), tombstones: Number(rows[0]?.tombstones ?? 0), cacheRepairs }
    } catch (error) {
      const code = (error as { code?: string }).code
      if (code === '3D000') { note = 'database does not exist yet (created when the system starts)'; return { keys: 0, tombstones: 0 } }
      if (code === '42P01') { note = 'table kv_store does not exist yet (created when the system starts)'; return { keys: 0, tombstones: 0 } }
      throw error
    } finally {
      await client.end().catch(() => {})
    }
  })
  if (!result.ok) return { url, ok: false, ms: result.ms, error: result.error }
  return { url, ok: true, ms: result.ms, ...result.value, ...(note ? { note } : {}) }
}

async function probeRedis(config: Config, timeoutMs: number): Promise<StatusReport['services']['redis']> {
  const url = redactUrl(config.redisUrl)
  const redis = new Redis(config.redisUrl, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  // ioredis rejects with "Connection is closed."; the 'error' event carries the cause worth showing.
  let cause: unknown
  redis.on('error', error => { cause ??= error })
  const result = await timed(async () => {
    try {
      await within(timeoutMs, 'Redis', redis.connect())
      await within(timeoutMs, 'Redis', redis.ping())
    } catch (error) {
      throw cause ?? error
    }
  })
  redis.disconnect()
  return result.ok ? { url, ok: true, ms: result.ms } : { url, ok: false, ms: result.ms, error: result.error }
}

async function probeRabbit(config: Config, timeoutMs: number): Promise<StatusReport['services']['rabbitmq']> {
  const url = redactUrl(config.amqpUrl)
  const names = [config.addQueue, deadLetterQueueName(config.addQueue), config.delQueue, deadLetterQueueName(config.delQueue)]
  let connection: ChannelModel | undefined
  const result = await timed(async () => {
    connection = await within(timeoutMs, 'RabbitMQ', connect(config.amqpUrl, { timeout: timeoutMs }))
    connection.on('error', () => {})
    const queues: QueueStatus[] = []
    for (const name of names) {
      // checkQueue on a missing queue closes its channel: one channel per check.
      const channel = await connection.createChannel()
      channel.on('error', () => {})
      const deadLetter = name.endsWith('.dlq')
      try {
        const { messageCount, consumerCount } = await within(timeoutMs, 'RabbitMQ', channel.checkQueue(name))
        queues.push({ name, messages: messageCount, consumers: consumerCount, deadLetter })
        await channel.close().catch(() => {})
      } catch (error) {
        if ((error as { code?: number }).code !== 404) throw error
        queues.push({ name, messages: null, consumers: null, deadLetter })
      }
    }
    return queues
  })
  await (connection as ChannelModel | undefined)?.close().catch(() => {})
  return result.ok ? { url, ok: true, ms: result.ms, queues: result.value } : { url, ok: false, ms: result.ms, error: result.error, queues: [] }
}

/** One Prometheus text exposition sample: `name{labels} value` lines, comments skipped. */
export interface Sample { name: string, labels: Record<string, string>, value: number }

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!match) continue
    const labels: Record<string, string> = {}
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    }
    const value = Number(match[3])
    if (Number.isFinite(value)) samples.push({ name: match[1]!, labels, value })
  }
  return samples
}

/** Messages held by the consumer hosts among these samples; null when no consumer host's gauge is there. */
function heldBy(samples: Sample[]): number | null {
  const held = samples.filter(s => s.name === 'kvarc_consumer_messages_held')
  return held.length === 0 ? null : total(held, 'kvarc_consumer_messages_held')
}

function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const s of samples) {
    if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value
  }
  return sum
}

async function scrape(url: string, timeoutMs: number): Promise<Sample[]> {
  const response = await fetch(new URL('/metrics', url), { signal: AbortSignal.timeout(timeoutMs) })
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`)
  return parsePrometheus(await response.text())
}

/** The latest scrape of each host, by its `host` label (every host's metrics carry one), else by URL. */
type Snapshot = Map<string, Sample[]>

/** Scrapes through the front door: nginx sends each to the next host, so a few cover every host. */
const FRONT_SCRAPES = 4

/** `names` collects each URL's host label, for hosts whose /health does not say their name. */
async function scrapeAll(sources: string[], viaFront: boolean, timeoutMs: number, names: Map<string, string>): Promise<Snapshot> {
  const snapshot: Snapshot = new Map()
  await Promise.all(sources.map(async url => {
    for (let i = 0; i < (viaFront ? FRONT_SCRAPES : 1); i++) {
      const samples = await scrape(url, timeoutMs).catch(() => undefined)
      if (!samples) continue
      const name = samples.find(s => s.labels.host)?.labels.host
      if (name && !viaFront) names.set(url, name)
      snapshot.set(name ?? url, samples)
    }
  }))
  return snapshot
}

/**
 * Two rounds of scrapes, `sampleMs` apart: counters are totals since each host
 * started, so rates need the difference, taken per host (a host seen in only
 * one round adds to the totals but not to the rates). Consumer hosts are not
 * behind the front door: applied/s needs their URL in KVARC_HOSTS.
 */
async function sampleTraffic(sources: string[], sampleMs: number, timeoutMs: number, viaFront: boolean, names: Map<string, string>): Promise<StatusReport['traffic']> {
  const empty = { sources: [], sampleSeconds: sampleMs / 1000, cacheHits: null, cacheMisses: null, cacheHitRatio: null, appliedTotal: null, appliedPerSecond: null, heldByConsumers: null, requestsPerSecond: null }
  const first = await scrapeAll(sources, viaFront, timeoutMs, names)
  const firstAt = performance.now()
  if (first.size === 0) return { ...empty, note: 'no host answered GET /metrics' }
  await new Promise(done => setTimeout(done, sampleMs))
  const second = await scrapeAll(sources, viaFront, timeoutMs, names)
  const seconds = (performance.now() - firstAt) / 1000
  if (second.size === 0) return { ...empty, note: 'hosts stopped answering GET /metrics between samples' }

  const latest = new Map([...first, ...second])
  const after = [...latest.values()].flat()
  const both = [...second.keys()].filter(name => first.has(name))
  const sum = (snapshot: Snapshot, count: (samples: Sample[]) => number) => both.reduce((total, name) => total + count(snapshot.get(name)!), 0)
  const applied = (samples: Sample[]) => total(samples, 'kvarc_consumer_writes_total', { outcome: 'applied' })
  const requests = (samples: Sample[]) => total(samples, 'kvarc_http_requests_total')
  // A host restarted between samples resets its counters: never show a negative rate.
  const rate = (count: (samples: Sample[]) => number) => Math.max(0, (sum(second, count) - sum(first, count)) / seconds)
  const hits = total(after, 'kvarc_cache_reads_total', { source: 'redis' })
  const misses = total(after, 'kvarc_cache_reads_total', { source: 'postgres' })
  return {
    sources: [...latest.keys()].sort(),
    sampleSeconds: Math.round(seconds * 100) / 100,
    cacheHits: hits,
    cacheMisses: misses,
    cacheHitRatio: hits + misses === 0 ? null : hits / (hits + misses),
    appliedTotal: viaFront ? null : applied(after),
    appliedPerSecond: viaFront ? null : rate(applied),
    heldByConsumers: viaFront ? null : heldBy([...second.values()].flat()),
    requestsPerSecond: rate(requests),
    ...(viaFront ? { note: 'through the front door only: applied/s needs the consumer host\'s URL in KVARC_HOSTS (npm start prints it)' } : {}),
  }
}

export async function collectStatus(options: StatusOptions): Promise<StatusReport> {
  const timeoutMs = options.timeoutMs ?? 2000
  const sampleMs = options.sampleMs ?? 1000
  const { config } = options
  const metricSources = options.hosts.length ? options.hosts : [options.url]
  const names = new Map<string, string>()
  const [hosts, postgres, redis, rabbitmq, traffic] = await Promise.all([
    Promise.all([probeHost(options.url, 'front', timeoutMs), ...options.hosts.map(url => probeHost(url, 'host', timeoutMs))]),
    probePostgres(config, timeoutMs),
    probeRedis(config, timeoutMs),
    probeRabbit(config, timeoutMs),
    sampleTraffic(metricSources, sampleMs, timeoutMs, options.hosts.length === 0, names),
  ])
  for (const host of hosts) {
    const name = names.get(host.url)
    if (host.ok && host.name === undefined && name) host.name = name
    const restarts = options.restarts?.[host.url]
    if (restarts !== undefined) host.restarts = restarts
  }
  const dlqs = rabbitmq.queues.filter(q => q.deadLetter)
  const deadLetters = rabbitmq.ok ? dlqs.reduce((sum, q) => sum + (q.messages ?? 0), 0) : null
  const ok = hosts.every(h => h.ok) && postgres.ok && redis.ok && rabbitmq.ok
  return { at: new Date().toISOString(), ok, hosts, services: { postgres, redis, rabbitmq }, deadLetters, traffic }
}

// Rendering ----------------------------------------------------------------

export interface Style { good(text: string): string, bad(text: string): string, warn(text: string): string, dim(text: string): string, bold(text: string): string }

const plain: Style = { good: t => t, bad: t => t, warn: t => t, dim: t => t, bold: t => t }
const ansi: Style = {
  good: t => `\x1b[32m${t}\x1b[39m`,
  bad: t => `\x1b[31m${t}\x1b[39m`,
  warn: t => `\x1b[33m${t}\x1b[39m`,
  dim: t => `\x1b[2m${t}\x1b[22m`,
  bold: t => `\x1b[1m${t}\x1b[22m`,
}

const number = (n: number | null | undefined) => (n === null || n === undefined ? '?' : Math.round(n).toLocaleString('en-US'))

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`
}

export function renderStatus(report: StatusReport, style: Style = plain): string {
  const out: string[] = []
  const up = (ok: boolean) => (ok ? style.good('up  ') : style.bad('DOWN'))
  const width = (rows: string[]) => Math.max(...rows.map(r => r.length))

  out.push(`${style.bold('kvarc status')}  ${report.at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}  ${report.ok ? style.good('all up') : style.bad('something is down')}`)

  out.push('', style.bold('Hosts'))
  const hostUrls = width(report.hosts.map(h => h.url))
  for (const h of report.hosts) {
    const what = h.role === 'front' ? 'front door' : (h.name ?? 'host')
    const restarts = (h.restarts ?? 0) > 0 ? `, ${style.warn(`restarts ${number(h.restarts)}`)}` : ''
    const detail = h.ok
      ? `${what}${h.uptimeSeconds === undefined ? '' : `, up ${duration(h.uptimeSeconds)}`}${restarts}  ${style.dim(`${h.ms} ms`)}`
      : `${style.bad(h.error ?? 'down')}${restarts}`
    out.push(`  ${up(h.ok)}  ${h.url.padEnd(hostUrls)}  ${detail}`)
  }
  if (report.hosts.length === 1) out.push(style.dim('  (set KVARC_HOSTS=url,url to check each host behind the front door)'))

  out.push('', style.bold('Backing services'))
  const { postgres, redis, rabbitmq } = report.services
  const serviceUrls = width([postgres.url, redis.url, rabbitmq.url])
  for (const [name, s] of [['PostgreSQL', postgres], ['Redis     ', redis], ['RabbitMQ  ', rabbitmq]] as const) {
    out.push(`  ${up(s.ok)}  ${name}  ${s.url.padEnd(serviceUrls)}  ${s.ok ? style.dim(`${s.ms} ms`) : style.bad(s.error ?? 'down')}`)
  }

  const nameWidth = Math.max(18, ...rabbitmq.queues.map(q => q.name.length))
  out.push('', style.bold('Queues'.padEnd(nameWidth + 2)) + style.dim('   ready  consumers'))
  if (!rabbitmq.ok) out.push(`  ${style.bad('unknown: RabbitMQ is down')}`)
  for (const q of rabbitmq.queues) {
    const messages = q.messages === null ? style.dim('missing'.padStart(8)) : number(q.messages).padStart(8)
    const flagged = q.deadLetter && (q.messages ?? 0) > 0 ? style.warn(messages) : messages
    out.push(`  ${q.name.padEnd(nameWidth)}${flagged}  ${(q.consumers === null ? '-' : number(q.consumers)).padStart(9)}`)
  }

  out.push('', style.bold('Store'))
  const keys = postgres.ok ? number(postgres.keys) : style.bad('unknown (PostgreSQL is down)')
  out.push(`  keys            ${keys}`)
  out.push(`  tombstones      ${postgres.ok ? number(postgres.tombstones) : style.bad('unknown')}`)
  if (postgres.ok && (postgres.cacheRepairs ?? 0) > 0) out.push(`  cache repairs   ${style.warn(number(postgres.cacheRepairs))} (entries to refresh once Redis answers)`)
  const dead = report.deadLetters
  out.push(`  dead letters    ${dead === null ? style.bad('unknown (RabbitMQ is down)') : dead > 0 ? style.warn(number(dead)) : number(dead)}`)
  if (postgres.note) out.push(style.dim(`  (${postgres.note})`))

  const t = report.traffic
  out.push('', style.bold('Traffic') + style.dim(t.sources.length ? `  (sampled over ${t.sampleSeconds.toFixed(1)} s from ${t.sources.join(', ')})` : ''))
  if (t.sources.length === 0) {
    out.push(`  ${style.bad(`unknown: ${t.note ?? 'no metrics'}`)}`)
  } else {
    const ratio = t.cacheHitRatio === null ? 'no reads yet' : `${(t.cacheHitRatio * 100).toFixed(1)} %  ${style.dim(`(${number(t.cacheHits)} hits / ${number(t.cacheMisses)} misses)`)}`
    out.push(`  cache hit ratio ${ratio}`)
    out.push(`  applied/s       ${t.appliedPerSecond === null ? style.warn('unknown') : `${number(t.appliedPerSecond)}  ${style.dim(`(${number(t.appliedTotal)} applied since the hosts started)`)}`}`)
    if (t.heldByConsumers !== null) out.push(`  held unacked    ${number(t.heldByConsumers)}  ${style.dim('(delivered to consumer hosts, not yet applied and acknowledged)')}`)
    out.push(`  requests/s      ${number(t.requestsPerSecond)}`)
    if (t.note) out.push(style.dim(`  (${t.note})`))
  }
  return out.join('\n') + '\n'
}

// Entry point --------------------------------------------------------------

const USAGE = `usage: npm run status [-- --json]

  KVARC_URL=http://127.0.0.1:8080   the front door (nginx)
  KVARC_HOSTS=url,url               individual hosts: their /health and /metrics
                                    (default: the hosts a local npm start on that port recorded,
                                    with how often it restarted each: "restarts N")
  DATABASE_URL, REDIS_URL, AMQP_URL, KVARC_ADD_QUEUE, KVARC_DEL_QUEUE  as for the system
`

export async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  const json = argv.includes('--json')
  const unknown = argv.filter(a => a !== '--json')
  if (unknown.includes('--help') || unknown.includes('-h')) { process.stdout.write(USAGE); return 0 }
  if (unknown.length) { process.stderr.write(`unknown argument ${unknown[0]}\n${USAGE}`); return 2 }

  let config: Config
  let url: string
  let hosts: string[]
  const restarts: Record<string, number> = {}
  try {
    config = loadConfig(env)
    url = checkUrl('KVARC_URL', env.KVARC_URL || 'http://127.0.0.1:8080')
    hosts = (env.KVARC_HOSTS ?? '').split(',').map(h => h.trim()).filter(Boolean).map(h => checkUrl('KVARC_HOSTS', h))
    const recorded = readStackFile(Number(new URL(url).port || 80))
    // Without KVARC_HOSTS, the hosts a local `npm start` on that port recorded.
    if (hosts.length === 0) hosts = recorded?.hosts.map(h => checkUrl('the stack file', h.url)) ?? []
    // Its supervisor's restart counts: the hosts by URL, nginx as the front door on that port.
    for (const h of recorded?.hosts ?? []) if (h.restarts !== undefined) restarts[checkUrl('the stack file', h.url)] = h.restarts
    if (recorded?.front?.restarts !== undefined) restarts[url] = recorded.front.restarts
  } catch (error) {
    process.stderr.write(`kvarc status: ${(error as Error).message}\n`)
    return 2
  }
  const report = await collectStatus({ url, hosts, config, restarts })
  const colour = process.stdout.isTTY && !env.NO_COLOR
  process.stdout.write(json ? JSON.stringify(report, null, 2) + '\n' : renderStatus(report, colour ? ansi : plain))
  return 0
}

function checkUrl(name: string, value: string): string {
  const withScheme = /^[a-z]+:\/\//i.test(value) ? value : `http://${value}`
  try {
    const parsed = new URL(withScheme)
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error()
    return parsed.origin
  } catch {
    throw new Error(`${name} has an invalid URL: ${JSON.stringify(value)}`)
  }
}

const entry = process.argv[1]
if (entry && import.meta.url === pathToFileURL(resolve(entry)).href) {
  main(process.argv.slice(2), process.env).then(
    code => { process.exitCode = code },
    (error: unknown) => { process.stderr.write(`kvarc status failed: ${reason(error)}\n`); process.exitCode = 2 },
  )
}
