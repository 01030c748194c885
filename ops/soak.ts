/**
 * `npm run soak`: the original system's headline, reproduced: N PUTs through
 * nginx at a fixed concurrency, then every key checked against the newest
 * acknowledged write for it. Prints throughput, wall time and lost = 0.
 *
 *   npm run soak                                   1,632,000 PUTs, concurrency 255, 10,000 keys
 *   npm run soak -- --requests 200000 --concurrency 255 --keys 10000
 *   npm run soak -- --url http://127.0.0.1:8080    against a running `npm start`
 *                                                  (services from DATABASE_URL / AMQP_URL / KVARC_* as it uses)
 *
 * Without --url it starts its own stack (ops/stack.ts: nginx, two HTTP
 * hosts, the consumer hosts) on free ports, in an isolated environment
 * (ops/isolated.ts: its own database, queues and cache prefix), and removes
 * that afterwards (--keep keeps the database, queues and cache entries).
 *
 * One Node process drives the load: a keep-alive agent with one socket per
 * concurrent request and a fixed pool of request loops (no per-request
 * promises beyond the request itself), so the client is not the bottleneck on
 * a 2-core machine shared with the stack. Only the newest acknowledged version
 * per key is kept, so memory stays flat for any N.
 */
import http from 'node:http'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { loadConfig } from '../src/shared/config.js'
import { waitDrained } from './drained.js'
import { isolate, type Isolated } from './isolated.js'
import { readStackFile } from './stack-file.js'
import { startStack, type Stack } from './stack.js'

interface Flags { requests: number, concurrency: number, keys: number, url?: string, keep: boolean, timeoutMs: number }

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { requests: 1_632_000, concurrency: 255, keys: 10_000, keep: false, timeoutMs: 30_000 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const [name, inline] = arg.includes('=') ? arg.split(/=(.*)/s) as [string, string] : [arg, undefined]
    const value = () => {
      const v = inline ?? argv[++i]
      if (v === undefined) usage(`${name} needs a value`)
      return v as string
    }
    const count = (min: number) => {
      const raw = value().replace(/[_,]/g, '')
      const n = Number(raw)
      if (!Number.isInteger(n) || n < min) usage(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`)
      return n
    }
    switch (name) {
      case '--requests': flags.requests = count(1); break
      case '--concurrency': flags.concurrency = count(1); break
      case '--keys': flags.keys = count(1); break
      case '--url': flags.url = value(); break
      case '--keep': flags.keep = true; break
      case '--timeout-ms': flags.timeoutMs = count(100); break
      case '--help': case '-h': usage(); break
      default: usage(`unknown argument ${JSON.stringify(arg)}`)
    }
  }
  return flags
}

function usage(problem?: string): never {
  if (problem) console.error(`soak: ${problem}`)
  console.error('usage: npm run soak -- [--requests N] [--concurrency C] [--keys K] [--url http://host:port] [--keep] [--timeout-ms MS]')
  process.exit(problem ? 2 : 0)
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

function duration(ms: number): string {
  const s = Math.round(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

/** Per key: the newest acknowledged version and its value. */
interface Newest { version: bigint, value: string }

interface Counts { sent: number, ok: number, failed: number, statuses: Map<string, number> }

function progressLine(counts: Counts, total: number, started: number, lastRate: number): string {
  const done = counts.ok + counts.failed
  const width = 30
  const filled = Math.round((done / total) * width)
  const elapsed = Date.now() - started
  const rate = done / Math.max(elapsed / 1000, 0.001)
  const eta = rate > 0 ? ((total - done) / rate) * 1000 : 0
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${((done / total) * 100).toFixed(1).padStart(5)}% ${fmt(done)}/${fmt(total)}  ${fmt(lastRate)} req/s now, ${fmt(rate)} avg  non-200 ${fmt(counts.failed)}  eta ${duration(eta)} `
}

async function drive(url: URL, flags: Flags, runId: string, newest: Map<string, Newest>): Promise<{ counts: Counts, wallMs: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: flags.concurrency, maxFreeSockets: flags.concurrency })
  const counts: Counts = { sent: 0, ok: 0, failed: 0, statuses: new Map() }
  const started = Date.now()
  const tty = process.stderr.isTTY
  let lastDone = 0
  let lastAt = started
  let lastRate = 0
  const ticker = setInterval(() => {
    const now = Date.now()
    const done = counts.ok + counts.failed
    lastRate = ((done - lastDone) * 1000) / Math.max(now - lastAt, 1)
    lastDone = done
    lastAt = now
    const line = progressLine(counts, flags.requests, started, lastRate)
    if (tty) process.stderr.write(`\r${line}`)
    else if (Math.floor((now - started) / 250) % 40 === 0) process.stderr.write(`${line}\n`) // every ~10 s when not a terminal
  }, 250)

  const fail = (status: string) => {
    counts.failed++
    counts.statuses.set(status, (counts.statuses.get(status) ?? 0) + 1)
  }

  const one = (i: number): Promise<void> => new Promise(resolve => {
    const key = `${runId}:k${i % flags.keys}`
    const value = `${runId}:v${i}`
    const body = JSON.stringify({ key, value })
    let settled = false
    const finish = () => { settled = true; clearTimeout(timer); resolve() }
    const req = http.request({ host: url.hostname, port: url.port, method: 'PUT', path: '/api', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, res => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        if (settled) return
        if (res.statusCode === 200) {
          const version = (JSON.parse(Buffer.concat(chunks).toString()) as { version: string }).version
          const v = BigInt(version)
          const seen = newest.get(key)
          if (!seen || seen.version < v) newest.set(key, { version: v, value })
          counts.ok++
        } else {
          fail(String(res.statusCode))
        }
        finish()
      })
      res.on('error', () => { if (!settled) { fail('error'); finish() } })
    })
    const timer = setTimeout(() => { if (!settled) { fail('timeout'); finish(); req.destroy() } }, flags.timeoutMs)
    req.on('error', (error: NodeJS.ErrnoException) => { if (!settled) { fail(error.code ?? 'error'); finish() } })
    req.end(body)
  })

  let next = 0
  const loop = async () => {
    while (next < flags.requests) {
      const i = next++
      counts.sent++
      await one(i)
    }
  }
  await Promise.all(Array.from({ length: flags.concurrency }, loop))
  clearInterval(ticker)
  const wallMs = Date.now() - started
  process.stderr.write(`${tty ? '\r' : ''}${progressLine(counts, flags.requests, started, lastRate)}\n`)
  agent.destroy()
  return { counts, wallMs }
}

async function verifyAll(databaseUrl: string, runId: string, newest: Map<string, Newest>): Promise<{ checked: number, lost: number, wrong: number, appliedUnacknowledged: number, examples: string[] }> {
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  try {
    const { rows } = await db.query<{ key: string, value: string | null, version: string, deleted: boolean }>(
      'SELECT key, value, version::text AS version, deleted FROM kv_store WHERE key >= $1 AND key < $2', [`${runId}:`, `${runId};`])
    const stored = new Map(rows.map(r => [r.key, r]))
    let lost = 0
    let wrong = 0
    let appliedUnacknowledged = 0
    const examples: string[] = []
    for (const [key, expected] of newest) {
      const row = stored.get(key)
      if (!row || BigInt(row.version) < expected.version) {
        lost++
        if (examples.length < 10) examples.push(`lost: ${key} expected version ${expected.version} holds ${row ? row.version : 'no row'}`)
      } else if (BigInt(row.version) > expected.version && !row.deleted && row.value?.startsWith(`${runId}:v`)) {
        // A newer PUT of this run whose answer was not a 200 (timeout, 503) may have been queued after all.
        appliedUnacknowledged++
      } else if (row.deleted || row.value !== expected.value || BigInt(row.version) !== expected.version) {
        // A PUT-only run: otherwise the newest acknowledged PUT is exactly what is stored.
        wrong++
        if (examples.length < 10) examples.push(`differs: ${key} expected ${expected.value}@${expected.version} holds ${row.value}@${row.version}`)
      }
    }
    return { checked: newest.size, lost, wrong, appliedUnacknowledged, examples }
  } finally {
    await db.end().catch(() => {})
  }
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2))
  const runId = `soak-${randomBytes(3).toString('hex')}`
  let iso: Isolated | undefined
  let stack: Stack | undefined
  let url: URL
  let config = loadConfig(process.env)
  let stopped: Promise<void> | undefined
  const stopping = () => {
    stopped ??= (async () => {
      await stack?.close().catch(() => {})
      if (iso && !flags.keep) await iso.cleanup().catch((error: unknown) => console.error(`soak: cleanup of ${iso?.id} failed: ${(error as Error).message}`))
    })()
    return stopped
  }
  process.once('SIGINT', () => { void stopping().then(() => process.exit(130)) })
  try {
    if (flags.url) {
      url = new URL(flags.url)
    } else {
      console.error('soak: starting a stack (nginx, two HTTP hosts, consumer hosts) on free ports ...')
      iso = await isolate('soak')
      config = iso.config
      // Errors only (isolate() says silent): they are what a failed start shows, from each child's last lines.
      stack = await startStack({ port: 0, env: { ...iso.env, LOG_LEVEL: 'error' } })
      url = new URL(stack.url)
    }
    console.error(`soak: ${fmt(flags.requests)} PUTs on ${fmt(flags.keys)} keys at concurrency ${flags.concurrency} through ${url.origin}`)
    const newest = new Map<string, Newest>()
    const { counts, wallMs } = await drive(url, flags, runId, newest)
    // The consumer hosts say what they still hold: the broker's unacknowledged count can lag.
    const consumerUrls = stack
      ? stack.processes().filter(p => p.role === 'consumer').map(p => p.url)
      : (readStackFile(Number(url.port || 80))?.hosts ?? []).filter(h => h.role === 'consumer').map(h => h.url)
    const drainMs = await waitDrained(config.amqpUrl, [config.addQueue, config.delQueue], 30 * 60_000, consumerUrls)
    const verifyStarted = Date.now()
    const result = await verifyAll(config.databaseUrl, runId, newest)
    const verifyMs = Date.now() - verifyStarted

    const statuses = [...counts.statuses].map(([s, n]) => `${s}: ${fmt(n)}`).join(', ')
    const lines = [
      '',
      `requests        ${fmt(flags.requests)} PUT (concurrency ${flags.concurrency}, ${fmt(flags.keys)} keys)`,
      `acknowledged    ${fmt(counts.ok)} (200)`,
      `not acknowledged ${fmt(counts.failed)}${statuses ? ` (${statuses})` : ''}`,
      `wall time       ${(wallMs / 1000).toFixed(1)} s`,
      `throughput      ${fmt((counts.ok + counts.failed) / (wallMs / 1000))} requests/s (${fmt(counts.ok / (wallMs / 1000))} acknowledged PUT/s)`,
      `queue drained   ${(drainMs / 1000).toFixed(1)} s after the last answer`,
      `keys verified   ${fmt(result.checked)} against their newest acknowledged write (${(verifyMs / 1000).toFixed(1)} s)`,
      `lost            ${fmt(result.lost)}`,
      `differing       ${fmt(result.wrong)}`,
      ...(result.appliedUnacknowledged ? [`newer unacknowledged write applied (allowed) ${fmt(result.appliedUnacknowledged)} keys`] : []),
    ]
    console.log(lines.join('\n'))
    for (const e of result.examples) console.log(`  ${e}`)
    process.exitCode = result.lost === 0 && result.wrong === 0 ? 0 : 1
  } finally {
    await stopping()
  }
}

main().catch(error => {
  console.error(`soak failed: ${(error as Error).stack ?? error}`)
  process.exit(1)
})
