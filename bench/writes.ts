/**
 * The write path end to end: how fast a backlog is applied to PostgreSQL
 * (drain), and how long an acknowledged PUT takes to become readable
 * (visibility lag) under a steady PUT load.
 */
import { connect } from 'amqplib'
import { Agent, request } from 'node:http'
import { queueDepth } from '../ops/queues.js'
import type { Config } from '../src/shared/config.js'
import { encodeWrite } from '../src/shared/messages.js'
import { openDatabase } from '../src/shared/postgres.js'
import { VersionClock } from '../src/shared/version.js'
import { cpuDelta } from './procs.js'
import { runLoad } from './load.js'
import type { DrainResult, LagResult } from './report.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/**
 * Publishes `count` PUT messages (keys drain-<i>) with a confirm channel, in
 * kvarc's message format, onto the add queue. The caller has stopped the
 * consumer, so they pile up.
 */
export async function publishBacklog(config: Config, count: number, valueBytes: number, onProgress?: (done: number) => void): Promise<number> {
  const connection = await connect(config.amqpUrl)
  try {
    const channel = await connection.createConfirmChannel()
    // Writer id 1023: the top of the range, which a short-lived stack is unlikely to have drawn.
    const clock = new VersionClock(1023)
    const value = 'd'.repeat(valueBytes)
    const started = performance.now()
    const window = 5000
    for (let start = 0; start < count; start += window) {
      for (let i = start; i < Math.min(start + window, count); i++) {
        channel.publish('', config.addQueue, encodeWrite(`drain-${i}`, value, clock.next()), { persistent: true, contentType: 'application/json' })
      }
      await channel.waitForConfirms()
      onProgress?.(Math.min(start + window, count))
    }
    return (performance.now() - started) / 1000
  } finally {
    await connection.close().catch(() => {})
  }
}

/**
 * Queues `count` PUTs (keys drain-<i>) the way users do: through the stack's
 * front door, `connections` requests in flight, each retried until answered 200
 * (so exactly `count` writes are queued). The warm hosts coalesce what arrives
 * together (writer.ts), so the backlog holds the messages kvarc itself would
 * leave behind a stopped consumer. Resolves with the time it took.
 */
export async function queueBacklogThroughApi(url: string, count: number, valueBytes: number, connections: number, onProgress?: (done: number) => void, authorization?: string): Promise<number> {
  const base = new URL(url)
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const value = 'd'.repeat(valueBytes)
  const started = performance.now()
  let next = 0
  let done = 0
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const body = JSON.stringify({ key: `drain-${i}`, value })
      for (let attempt = 1; ; attempt++) {
        const answer = await call(agent, base, 'PUT', '/api', body, authorization).catch(() => undefined)
        if (answer?.status === 200) break
        if (attempt >= 20) throw new Error(`drain: PUT drain-${i} not accepted after ${attempt} attempts (last: ${answer ? `${answer.status} ${answer.body}` : 'no answer'})`)
        await sleep(50 * attempt)
      }
      if (++done % 5000 === 0) onProgress?.(done)
    }
  }
  try {
    await Promise.all(Array.from({ length: connections }, worker))
  } finally {
    agent.destroy()
  }
  return (performance.now() - started) / 1000
}

export interface DrainControl {
  stopConsumer(): Promise<void>
  startConsumer(): Promise<void>
}

/**
 * Stops the consumer, publishes the backlog, starts the consumer and times
 * first applied row → all `count` rows present. Row counting is a range scan
 * on the primary key, polled sparingly while the queue still holds messages
 * (it competes with the consumer for PostgreSQL) and often once it is empty.
 */
export async function measureDrain(config: Config, control: DrainControl, options: { count: number, valueBytes: number, timeoutMs: number, via: DrainResult['via'], url?: string, authorization?: string, connections: number, cpu?: () => Promise<Record<string, number>>, metricsUrl?: () => string | undefined }, progress: (text: string, live?: boolean) => void): Promise<DrainResult> {
  await control.stopConsumer()
  const db = await openDatabase(config.databaseUrl, 1)
  try {
    const drainRows = async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM kv_store WHERE key >= 'drain-' AND key < 'drain.'`)).rows[0]!.n)
    const already = await drainRows()
    if (already > 0) throw new Error(`the bench database already holds ${already} drain rows`)
    const onProgress = (done: number) => progress(`drain: queued ${done.toLocaleString('en-US')}`, true)
    let publishSeconds: number
    if (options.via === 'api') {
      if (!options.url) throw new Error('drain through the API needs the stack\'s URL')
      progress(`drain: queueing ${options.count.toLocaleString('en-US')} PUTs through ${options.url}, consumer stopped`)
      publishSeconds = await queueBacklogThroughApi(options.url, options.count, options.valueBytes, options.connections, onProgress, options.authorization)
    } else {
      progress(`drain: publishing ${options.count.toLocaleString('en-US')} one-write messages with confirms, consumer stopped`)
      publishSeconds = await publishBacklog(config, options.count, options.valueBytes, onProgress)
    }
    const queuedMessages = await queueDepth(config.amqpUrl, config.addQueue)
    progress(`drain: ${queuedMessages.toLocaleString('en-US')} messages queued in ${publishSeconds.toFixed(2)} s; starting the consumer`)

    const t0 = performance.now()
    const deadline = Date.now() + options.timeoutMs
    // Polled while the start is in progress: a start that waits for readiness may return after the first rows landed.
    let startError: unknown
    const starting = control.startConsumer().catch((error: unknown) => { startError = error })
    let first: number | undefined
    while (first === undefined) {
      if (startError) throw startError
      if (Date.now() > deadline) throw new Error('drain: no row was applied before the timeout')
      const { rowCount } = await db.query(`SELECT 1 FROM kv_store WHERE key >= 'drain-' AND key < 'drain.' LIMIT 1`)
      if (rowCount) first = performance.now()
      else await sleep(10)
    }
    const cpuBefore = await options.cpu?.()
    await starting
    if (startError) throw startError
    let rows = 0
    let last = first
    for (;;) {
      if (Date.now() > deadline) throw new Error(`drain: only ${rows} of ${options.count} rows applied before the timeout`)
      const depth = await queueDepth(config.amqpUrl, config.addQueue)
      if (depth > 0) {
        progress(`drain: ${depth.toLocaleString('en-US')} messages still queued`, true)
        await sleep(100)
        continue
      }
      rows = await drainRows()
      last = performance.now()
      if (rows >= options.count) break
      await sleep(20)
    }
    const drainSeconds = (last - first) / 1000
    const cpuAfter = await options.cpu?.()
    const cpu = cpuDelta(cpuBefore ?? {}, cpuAfter ?? {})
    const metricsUrl = options.metricsUrl?.()
    const batches = metricsUrl ? await scrapeBatches(metricsUrl, 'add-key', drainSeconds).catch(() => undefined) : undefined
    return {
      cpu,
      batches,
      messages: options.count,
      via: options.via,
      queuedMessages,
      publishSeconds,
      publishRate: options.count / publishSeconds,
      startupSeconds: (first - t0) / 1000,
      drainSeconds,
      writesPerSecond: rows / drainSeconds,
      rowsApplied: rows,
    }
  } finally {
    await db.end().catch(() => {})
  }
}

/** The value of one Prometheus sample line `name{labels} value` whose labels include `label`. */
function sample(text: string, name: string, label: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ') && line.includes(label)) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

/**
 * The consumer host's own counters for the drain (it was restarted for it, so
 * they cover exactly the drain): how many batches, their mean size, the mean
 * time inside the function, and the share of the drain's wall time × in-flight
 * slots the function was running — low means the time went outside it
 * (delivery, batching window, acknowledgement), high means inside (PostgreSQL, Redis).
 */
export async function scrapeBatches(url: string, consumer: string, drainSeconds: number): Promise<NonNullable<DrainResult['batches']>> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text()
  const label = `consumer="${consumer}"`
  const count = sample(text, 'kvarc_consumer_batch_duration_seconds_count', label) ?? 0
  const seconds = sample(text, 'kvarc_consumer_batch_duration_seconds_sum', label) ?? 0
  const applied = sample(text, 'kvarc_consumer_writes_total', `${label},outcome="applied"`) ?? sample(text, 'kvarc_consumer_writes_total', 'outcome="applied"') ?? 0
  return {
    count,
    meanSize: count ? applied / count : 0,
    meanMs: count ? (seconds * 1000) / count : 0,
    functionSeconds: seconds,
    functionShare: drainSeconds > 0 ? seconds / drainSeconds : 0,
  }
}

interface Answer { status: number, body: string }

function call(agent: Agent, base: URL, method: string, path: string, body?: string, authorization?: string): Promise<Answer> {
  const headers: Record<string, string | number> = body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}
  if (authorization) headers.authorization = authorization
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: base.hostname, port: base.port, method, path, headers }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(body)
  })
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/**
 * PUT load at about `rate` per second from wrk (keys lagload-<i>), paced by a
 * fixed pause per connection, while `probesPerSecond` probes run here: a probe
 * PUTs a fresh key, and after its 200 GETs it (every `pollMs`, backing off to a
 * tenth of the time waited) until its value comes back. Lag = that GET's
 * answer time − the PUT's answer time. The achieved rate is what wrk measured
 * plus the probes; it is reported next to the target.
 */
export async function measureLag(url: string, options: { rate: number, seconds: number, probesPerSecond: number, pollMs: number, valueBytes: number, connections: number, latencyMs: number, authorization?: string }): Promise<LagResult> {
  const base = new URL(url)
  // Probes get their own sockets and never queue behind anything.
  const probeAgent = new Agent({ keepAlive: true, maxSockets: 64 })
  const lags: number[] = []
  let lost = 0
  let non2xx = 0

  const probe = async (n: number) => {
    const key = `lagprobe-${n}`
    const expected = `probe-${n}-${Date.now()}`
    const put = await call(probeAgent, base, 'PUT', '/api', JSON.stringify({ key, value: expected }), options.authorization).catch(() => undefined)
    if (!put || put.status !== 200) { non2xx++; return }
    const ackedAt = performance.now()
    const giveUp = ackedAt + 5000
    while (performance.now() < giveUp) {
      const got = await call(probeAgent, base, 'GET', `/api?key=${key}`, undefined, options.authorization).catch(() => undefined)
      if (got?.status === 200 && (JSON.parse(got.body) as { data?: { value?: string } }).data?.value === expected) {
        lags.push(performance.now() - ackedAt)
        return
      }
      // A tenth of the time waited: resolution stays within 10 % while a slow system is not buried under GETs.
      await sleep(Math.max(options.pollMs, (performance.now() - ackedAt) / 10))
    }
    lost++
  }

  // Each connection sends one request per (pause + latency): pause = connections / rate − latency.
  // A short calibration run measures the latency at about this load, then the pause is set from it.
  const paced = (pauseMs: number, seconds: number) => runLoad({ url, scenario: 'lag-put', durationSeconds: seconds, connections: options.connections, threads: 1, base: 0, span: 100_000, valueBytes: options.valueBytes, pauseMs, authorization: options.authorization })
  const interval = (options.connections * 1000) / options.rate
  let pauseMs = Math.max(0, interval - options.latencyMs)
  const calibration = await paced(pauseMs, 2)
  if (calibration.rps > 0) pauseMs = Math.max(0, interval - Math.max(0, (options.connections * 1000) / calibration.rps - pauseMs))
  const load = paced(pauseMs, options.seconds)
  const probes: Promise<void>[] = []
  const started = performance.now()
  for (let n = 0; performance.now() - started < options.seconds * 1000; n++) {
    probes.push(probe(n))
    await sleep(1000 / options.probesPerSecond)
  }
  const [loadResult] = await Promise.all([load, Promise.all(probes)])
  probeAgent.destroy()
  lags.sort((a, b) => a - b)
  return {
    targetRate: options.rate,
    achievedRate: loadResult.rps + probes.length / options.seconds,
    probes: lags.length + lost,
    p50Ms: percentile(lags, 50),
    p99Ms: percentile(lags, 99),
    maxMs: lags.length ? lags[lags.length - 1]! : NaN,
    lost,
    non2xx: non2xx + loadResult.non2xx + loadResult.errors,
  }
}
