/**
 * `npm run status` against isolated real services: counts from PostgreSQL and
 * RabbitMQ, hosts that are absent shown as down (no stack trace), and live
 * rates from a real running stack's /metrics (nginx, two HTTP hosts, the consumer host).
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { connect } from 'amqplib'
import pg from 'pg'
import getPort from 'get-port'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKvarcMetrics } from './metrics.js'
import { prepareBackingServices } from './backing-services.js'
import { startStack, type Stack } from './stack.js'
import { deadLetterQueueName } from '../src/shared/queue.js'
import { ensureBundles } from '../test/browser/system.js'
import { isolate, type Isolated } from '../test/support/isolated.js'
import { collectStatus, parsePrometheus, renderStatus, type StatusReport } from './status.js'

const run = promisify(execFile)

let iso: Isolated
let stack: Stack | undefined

beforeAll(async () => {
  iso = await isolate('status')
  await prepareBackingServices(iso.config)

  // Prepare: three live keys and one tombstone in the record, two dead letters.
  const db = new pg.Client({ connectionString: iso.config.databaseUrl })
  await db.connect()
  try {
    await db.query(`INSERT INTO kv_store (key, value, version, deleted) VALUES
      ('a', '1', 10, false), ('b', '2', 11, false), ('c', '3', 12, false), ('gone', NULL, 13, true)`)
  } finally {
    await db.end()
  }
  const connection = await connect(iso.config.amqpUrl)
  try {
    const channel = await connection.createConfirmChannel()
    for (const body of ['{"poison":1}', '{"poison":2}']) channel.sendToQueue(deadLetterQueueName(iso.config.addQueue), Buffer.from(body), { persistent: true })
    await channel.waitForConfirms()
  } finally {
    await connection.close()
  }
})

afterAll(async () => {
  await stack?.close()
  await iso?.cleanup()
})

describe('npm run status', () => {
  it('shows absent hosts as down, and the store and queues from the services', async () => {
    const [front, other] = [`http://127.0.0.1:${await getPort()}`, `http://127.0.0.1:${await getPort()}`]

    const report = await collectStatus({ url: front, hosts: [other], config: iso.config, sampleMs: 100 })

    expect(report.ok).toBe(false)
    expect(report.hosts.map(h => [h.url, h.role, h.ok, h.error])).toEqual([
      [front, 'front', false, 'connection refused'],
      [other, 'host', false, 'connection refused'],
    ])
    expect(report.services.postgres).toMatchObject({ ok: true, keys: 3, tombstones: 1 })
    expect(report.services.redis.ok).toBe(true)
    expect(report.services.rabbitmq.ok).toBe(true)
    expect(report.services.rabbitmq.queues.map(q => [q.name, q.messages])).toEqual([
      [iso.config.addQueue, 0], [deadLetterQueueName(iso.config.addQueue), 2],
      [iso.config.delQueue, 0], [deadLetterQueueName(iso.config.delQueue), 0],
    ])
    expect(report.deadLetters).toBe(2)
    expect(report.traffic.sources).toEqual([])
    expect(report.traffic.cacheHitRatio).toBeNull()

    const text = renderStatus(report)
    expect(text).toContain(`DOWN  ${front}  connection refused`)
    expect(text).toContain(`DOWN  ${other}  connection refused`)
    expect(text).toMatch(/keys {12}3\n/)
    expect(text).toMatch(/tombstones {6}1\n/)
    expect(text).toMatch(/dead letters {4}2\n/)
    expect(text).toContain('unknown: no host answered GET /metrics')
  })

  it('runs as a command: plain words and --json, no stack trace, when everything is down', async () => {
    const env = {
      ...process.env,
      ...iso.env,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${await getPort()}/kv`,
      REDIS_URL: `redis://127.0.0.1:${await getPort()}`,
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${await getPort()}`,
      KVARC_URL: `http://127.0.0.1:${await getPort()}`,
      NO_COLOR: '1',
    }
    const plain = await run(process.execPath, ['--import', 'tsx', 'ops/status.ts'], { env, timeout: 30_000 })
    expect(plain.stdout).toContain('something is down')
    expect(plain.stdout).toMatch(/DOWN {2}PostgreSQL .* connection refused/)
    expect(plain.stdout).toMatch(/DOWN {2}Redis .* connection refused/)
    expect(plain.stdout).toMatch(/DOWN {2}RabbitMQ .* connection refused/)
    expect(plain.stdout).toContain('keys            unknown (PostgreSQL is down)')
    expect(plain.stdout).not.toMatch(/^\s+at /m)
    expect(plain.stderr).toBe('')

    const json = await run(process.execPath, ['--import', 'tsx', 'ops/status.ts', '--json'], { env, timeout: 30_000 })
    const report = JSON.parse(json.stdout) as { ok: boolean, services: Record<string, { ok: boolean, url: string }>, deadLetters: number | null }
    expect(report.ok).toBe(false)
    expect(Object.values(report.services).map(s => s.ok)).toEqual([false, false, false])
    expect(report.services.rabbitmq!.url).not.toContain('guest:guest')
    expect(report.deadLetters).toBeNull()
  })

  it('shows a running stack: every host up, cache hit ratio, applied/s and requests/s', async () => {
    await ensureBundles()
    stack = await startStack({ port: 0, env: iso.env, stopTimeoutMs: 10_000 })
    // Without nginx installed the stack is one HTTP host plus the consumer host: expect what it started.
    const processes = stack.processes().filter(p => p.role !== 'nginx')
    const hosts = processes.map(p => p.url)
    // A miss then hits on key "a" (the record has it; the first read fills the cache).
    for (let i = 0; i < 3; i++) expect((await fetch(`${stack.url}/api?key=a`)).status).toBe(200)

    // Writes and reads keep flowing while the status samples, so the rates have something to measure.
    // (A 503 under this machine's load is the API's business, not the status view's: counted, not asserted.)
    let sampling = true
    let queued = 0
    const traffic = (async () => {
      for (let i = 0; sampling && i < 20_000; i++) {
        const put = await fetch(`${stack!.url}/api`, { method: 'PUT', body: JSON.stringify({ key: `load-${i % 20}`, value: String(i) }) })
        if (put.status === 200) queued++
        await put.arrayBuffer()
        await fetch(`${stack!.url}/api?key=a`).then(r => r.arrayBuffer())
      }
    })()
    // A sample window that saw writes applied and requests served is waited for, not assumed: on a
    // loaded machine one second can pass with nothing applied (a consumer batch in a retry, 503s).
    // Probes get a generous bound too: what is tested is the view, not how fast a busy machine answers.
    const sample = (h: string[], sampleMs: number) => collectStatus({ url: stack!.url, hosts: h, config: iso.config, sampleMs, timeoutMs: 10_000 })
    const sawTraffic = (r: StatusReport) => r.ok && (r.traffic.appliedPerSecond ?? 0) > 0 && (r.traffic.requestsPerSecond ?? 0) > 0
    const deadline = Date.now() + 30_000
    let report = await sample(hosts, 1000)
    while (!sawTraffic(report) && Date.now() < deadline) report = await sample(hosts, 1000)
    const frontOnly = await sample([], 300)
    sampling = false
    await traffic

    expect(queued).toBeGreaterThan(0)
    expect(report.ok).toBe(true)
    expect(report.hosts.map(h => [h.role, h.ok])).toEqual([['front', true], ...hosts.map(() => ['host', true])])
    expect(report.hosts.slice(1).map(h => h.name)).toEqual(processes.map(p => p.name))
    expect(processes.map(p => p.name)).toContain('consumer')
    expect(report.traffic.sources).toEqual(processes.map(p => p.name).sort())
    expect(report.traffic.cacheHits).toBeGreaterThanOrEqual(2)
    expect(report.traffic.cacheHitRatio).toBeGreaterThan(0)
    expect(report.traffic.cacheHitRatio).toBeLessThanOrEqual(1)
    expect(report.traffic.appliedPerSecond).toBeGreaterThan(0)
    expect(report.traffic.appliedTotal).toBeGreaterThan(0)
    expect(report.traffic.requestsPerSecond).toBeGreaterThan(0)
    expect(report.traffic.heldByConsumers).toEqual(expect.any(Number)) // the consumer host's gauge was scraped
    expect(report.services.postgres.keys).toBeGreaterThanOrEqual(3)
    const text = renderStatus(report)
    expect(text).toContain('all up')
    expect(text).toMatch(/up {4}http:\/\/127\.0\.0\.1:\d+ +consumer\b/)
    expect(text).toMatch(/up {4}http:\/\/127\.0\.0\.1:\d+ +http-1, up \d+s/)
    expect(text).toMatch(/applied\/s {7}[\d,]+ /)
    expect(text).toMatch(/held unacked {4}[\d,]+ /)

    // Through the front door alone: the HTTP hosts' metrics, and a note instead of applied/s.
    expect(frontOnly.hosts.map(h => [h.role, h.ok])).toEqual([['front', true]])
    expect(frontOnly.traffic.sources.length).toBeGreaterThanOrEqual(1)
    expect(frontOnly.traffic.sources.every(name => name.startsWith('http-'))).toBe(true)
    expect(frontOnly.traffic.appliedPerSecond).toBeNull()
    expect(frontOnly.traffic.heldByConsumers).toBeNull()
    expect(frontOnly.traffic.note).toContain('KVARC_HOSTS')
    expect(renderStatus(frontOnly)).toContain('applied/s       unknown')
  }, 90_000)

  it('shows "restarts N" for a host npm start\'s supervisor restarted, only when N > 0', () => {
    // Prepare: what collectStatus builds from a stack file with restart counts
    const probe = { ok: true, ms: 1 }
    const report: StatusReport = {
      at: '2025-01-01T00:00:00.000Z', ok: false,
      hosts: [
        { url: 'http://127.0.0.1:1', role: 'front', ...probe, restarts: 0 },
        { url: 'http://127.0.0.1:2', role: 'host', ...probe, name: 'http-1', uptimeSeconds: 5, restarts: 1 },
        { url: 'http://127.0.0.1:3', role: 'host', ok: false, ms: 1, error: 'connection refused', restarts: 3 },
        { url: 'http://127.0.0.1:4', role: 'host', ...probe, name: 'consumer' },
      ],
      services: { postgres: { url: 'pg', ...probe, keys: 0, tombstones: 0 }, redis: { url: 'redis', ...probe }, rabbitmq: { url: 'amqp', ...probe, queues: [] } },
      deadLetters: 0,
      traffic: { sources: [], sampleSeconds: 1, cacheHits: null, cacheMisses: null, cacheHitRatio: null, appliedTotal: null, appliedPerSecond: null, heldByConsumers: null, requestsPerSecond: null },
    }

    // Act
    const lines = renderStatus(report).split('\n')

    // Assess
    expect(lines.find(l => l.includes(':1 '))).toMatch(/front door {2}1 ms$/)
    expect(lines.find(l => l.includes(':2 '))).toMatch(/http-1, up 5s, restarts 1 {2}1 ms$/)
    expect(lines.find(l => l.includes(':3 '))).toMatch(/DOWN {2}http:\/\/127\.0\.0\.1:3 {2}connection refused, restarts 3$/)
    expect(lines.find(l => l.includes(':4 '))).toMatch(/consumer {2}1 ms$/)
  })

  it('sums prom-client counters across labels', async () => {
    const metrics = createKvarcMetrics({ host: 'h1' })
    metrics.writes.inc({ consumer: 'add-key', outcome: 'applied' }, 7)
    metrics.writes.inc({ consumer: 'del-key', outcome: 'applied' }, 3)
    metrics.writes.inc({ consumer: 'add-key', outcome: 'skipped' }, 5)
    metrics.cacheReads.inc({ source: 'redis' }, 9)

    const samples = parsePrometheus(await metrics.registry.metrics())

    const applied = samples.filter(s => s.name === 'kvarc_consumer_writes_total' && s.labels.outcome === 'applied')
    expect(applied.map(s => [s.labels.consumer, s.labels.host, s.value])).toEqual([['add-key', 'h1', 7], ['del-key', 'h1', 3]])
    expect(samples.find(s => s.name === 'kvarc_cache_reads_total')?.value).toBe(9)
  })
})
