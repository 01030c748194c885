/**
 * The consumer host against the real services, in its own database and queues.
 * PostgreSQL is reached through a TCP proxy the test controls (forward, refuse,
 * or slow), so an outage and a slow batch are produced without touching the
 * shared server.
 */
import { connect, type ChannelModel, type ConfirmChannel } from 'amqplib'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net'
import type pg from 'pg'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeWrite } from '../../src/shared/messages.js'
import { openDatabase } from '../../src/shared/postgres.js'
import { deadLetterQueueName } from '../../src/shared/queue.js'
import { applyWrites } from '../../src/shared/store.js'
import { VersionClock, versionAtMillis } from '../../src/shared/version.js'
import { eventually, isolate, type Isolated } from '../../test/support/isolated.js'
import { queueBindings } from '../../ops/queues.js'
import { countConsumerWrites, createKvarcMetrics, type KvarcMetrics } from '../../ops/metrics.js'
import { startConsumerHost, type ConsumerHost } from './consumer-host.js'
import type { Metrics } from '../metrics.js'
import { loadConfig, type Config } from '../../src/shared/config.js'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))

type Mode = 'forward' | 'refuse' | 'slow'

/** A TCP proxy to a service: 'refuse' drops every connection (an outage), 'slow' delays each client chunk. */
async function startProxy(target: URL, defaultPort: number) {
  let mode: Mode = 'forward'
  let delayMs = 0
  const open = new Set<Socket>()
  const server: Server = createServer(client => {
    if (mode === 'refuse') return void client.destroy()
    const upstream = tcpConnect(Number(target.port || defaultPort), target.hostname)
    open.add(client)
    open.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    for (const socket of [client, upstream]) {
      socket.on('error', drop)
      socket.on('close', drop)
    }
    client.on('data', chunk => {
      // Equal delays fire in order, so the byte stream stays intact.
      if (mode === 'slow') setTimeout(() => upstream.write(chunk), delayMs)
      else upstream.write(chunk)
    })
    upstream.pipe(client)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    port,
    set(next: Mode, delay = 0) {
      mode = next
      delayMs = delay
      if (next === 'refuse') for (const socket of open) socket.destroy()
    },
    close: () => new Promise<void>(resolve => {
      for (const socket of open) socket.destroy()
      server.close(() => resolve())
    }),
  }
}

let iso: Isolated
let proxy: Awaited<ReturnType<typeof startProxy>>
let brokerProxy: Awaited<ReturnType<typeof startProxy>>
let db: pg.Pool
let amqp: ChannelModel
let publisher: ConfirmChannel
const clock = new VersionClock(1)
const hosts: ConsumerHost[] = []

/** A consumer host with kvarc's metrics (what the app counts of its batches, as ops/consumer-host-main.ts wires it). */
type KvarcConsumerHost = ConsumerHost & { metrics: KvarcMetrics }

async function start({ config = iso.config, ...options }: { concurrency?: number, config?: Config, scheduled?: string[] } = {}): Promise<KvarcConsumerHost> {
  // kvarc's metric names, as ops/consumer-host-main.ts hands them in.
  const metrics = createKvarcMetrics({ host: 'consumer' })
  const host = await startConsumerHost({ cwd: ROOT, ...queueBindings(config), metricsPort: 0, minBackoffMs: 20, maxBackoffMs: 200, metrics, observeBatch: countConsumerWrites(metrics), ...options })
  hosts.push(host)
  return host as KvarcConsumerHost
}

async function publishPuts(prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    publisher.sendToQueue(iso.config.addQueue, encodeWrite(`${prefix}${i}`, `value ${i}`, clock.next()), { persistent: true })
  }
  await publisher.waitForConfirms()
}

async function rowsWithPrefix(prefix: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM kv_store WHERE key LIKE $1', [`${prefix}%`])
  return Number(rows[0]!.n)
}

async function ready(queue: string): Promise<number> {
  const channel = await amqp.createChannel()
  try {
    return (await channel.checkQueue(queue)).messageCount
  } finally {
    await channel.close()
  }
}

/**
 * The ready count once the broker has settled at `expected`: a quorum queue
 * takes back the messages of a closed channel asynchronously, and on a loaded
 * machine later than any fixed pause, so two reads that merely agree (both
 * before the return) prove nothing. Reads until two in a row, 150 ms apart,
 * show `expected`; after 15 s, returns the last read for the assertion to show.
 */
async function settledReady(queue: string, expected: number): Promise<number> {
  const deadline = Date.now() + 15_000
  let last = await ready(queue)
  for (;;) {
    await new Promise(resolve => setTimeout(resolve, 150))
    const now = await ready(queue)
    if ((now === expected && last === expected) || Date.now() > deadline) return now
    last = now
  }
}

async function counted(metric: Metrics['batches'] | KvarcMetrics['writes'] | Metrics['scheduledRuns'], labels: Record<string, string>): Promise<number> {
  const { values } = await metric.get()
  return values.filter(v => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want)).reduce((sum, v) => sum + v.value, 0)
}

beforeAll(async () => {
  iso = await isolate('consumerhost')
  proxy = await startProxy(new URL(iso.config.databaseUrl), 5432)
  brokerProxy = await startProxy(new URL(iso.config.amqpUrl), 5672)
  const viaProxy = new URL(iso.config.databaseUrl)
  viaProxy.host = `127.0.0.1:${proxy.port}`
  // The bundles read their config from the environment on first use; their PostgreSQL is the proxy.
  Object.assign(process.env, iso.env, { DATABASE_URL: viaProxy.toString() })
  amqp = await connect(iso.config.amqpUrl)
  publisher = await amqp.createConfirmChannel()
  // A first host prepares database, schema and queues, as the stack does before starting hosts.
  const first = await start()
  await first.close()
  // Direct to PostgreSQL (not through the proxy): what the record holds, whatever the proxy does.
  db = await openDatabase(iso.config.databaseUrl, 2)
})

afterAll(async () => {
  await Promise.allSettled(hosts.map(h => h.close()))
  await db?.end().catch(() => {})
  await amqp?.close().catch(() => {})
  await proxy?.close()
  await brokerProxy?.close()
  await iso?.cleanup()
})

describe('consumer host', () => {
  it('applies batches from its queue, acknowledges them and dead-letters poison', async () => {
    // Prepare
    const host = await start({ concurrency: 2 })
    publisher.sendToQueue(iso.config.addQueue, Buffer.from('{"key":"bad\\u0000key","value":"x","version":"1"}'), { persistent: true })
    await publishPuts('apply-', 1200)

    // Act
    await eventually(async () => (await rowsWithPrefix('apply-')) === 1200, '1200 rows applied', 30_000)
    await eventually(async () => (await counted(host.metrics.writes, { outcome: 'dead_lettered' })) === 1, 'the poison message dead-lettered')
    await host.close()

    // Assess: nothing came back to the queue on close, so every message was acknowledged.
    expect(await settledReady(iso.config.addQueue, 0)).toBe(0)
    expect(await settledReady(deadLetterQueueName(iso.config.addQueue), 1)).toBe(1)
    expect(await counted(host.metrics.writes, { outcome: 'applied' })).toBe(1200)
    const { rows } = await db.query('SELECT value FROM kv_store WHERE key = $1', ['apply-7'])
    expect(rows).toEqual([{ value: 'value 7' }])
  })

  it('serves /health, /ready and /metrics', async () => {
    const host = await start()
    const health = await fetch(`${host.url}/health`)
    expect(health.status).toBe(200)
    const readiness = await fetch(`${host.url}/ready`)
    expect(await readiness.json()).toEqual({
      status: 'ready', consuming: [iso.config.addQueue, iso.config.delQueue],
      held: { [iso.config.addQueue]: 0, [iso.config.delQueue]: 0 },
      // app.arc's batch of 1,000 × (the default concurrency of 1 + one filling).
      prefetch: { [iso.config.addQueue]: 2000, [iso.config.delQueue]: 2000 },
    })
    const metrics = await (await fetch(`${host.url}/metrics`)).text()
    expect(metrics).toContain('kvarc_consumer_batches_total')
    expect(metrics).toMatch(/kvarc_consumer_messages_held\{[^}]*consumer="add-key"[^}]*\} 0/)
    expect((await fetch(`${host.url}/nope`)).status).toBe(404)
    await host.close()
  })

  it('retries a batch while PostgreSQL is unreachable: never acknowledged, never dead-lettered, applied once it is back', async () => {
    // Prepare: an outage.
    proxy.set('refuse')
    const host = await start()
    await publishPuts('outage-', 50)

    // Act / Assess: it keeps failing and retrying...
    await eventually(async () => (await counted(host.metrics.batches, { outcome: 'failed' })) >= 3, 'three failed attempts')
    expect(await rowsWithPrefix('outage-')).toBe(0)
    // The broker counts them unacknowledged, maybe seconds late; the host knows at once (what "drained" checks).
    // (Waited for, not read once: three failed attempts can come before the broker delivered all 50.)
    const held = async () => ((await (await fetch(`${host.url}/ready`)).json()) as { held: Record<string, number> }).held[iso.config.addQueue]
    await eventually(async () => (await held()) === 50, 'the host holding all 50 messages')
    // ...and shutting down during the outage gives the messages back instead of acknowledging them.
    await host.close()
    expect(await settledReady(iso.config.addQueue, 50)).toBe(50)
    expect(await settledReady(deadLetterQueueName(iso.config.addQueue), 1)).toBe(1) // only the earlier poison

    // A host started during the outage recovers when PostgreSQL returns, without a restart.
    const recovering = await start()
    await eventually(async () => (await counted(recovering.metrics.batches, { outcome: 'failed' })) >= 1, 'a failed attempt')
    proxy.set('forward')
    await eventually(async () => (await rowsWithPrefix('outage-')) === 50, '50 rows applied after the outage', 20_000)
    await recovering.close()
    expect(await settledReady(iso.config.addQueue, 0)).toBe(0)
    expect(await settledReady(deadLetterQueueName(iso.config.addQueue), 1)).toBe(1)
  })

  it('reconnects to RabbitMQ after losing its connection, without a restart', async () => {
    // Prepare: the host reaches the broker through a proxy that can cut it off.
    const viaProxy = new URL(iso.config.amqpUrl)
    viaProxy.host = `127.0.0.1:${brokerProxy.port}`
    const host = await start({ config: loadConfig({ ...iso.env, AMQP_URL: viaProxy.toString() }) })
    await publishPuts('before-', 20)
    await eventually(async () => (await rowsWithPrefix('before-')) === 20, 'writes applied before the outage')

    // Act: the broker connection drops and stays refused for a while.
    brokerProxy.set('refuse')
    await eventually(async () => (await fetch(`${host.url}/ready`)).status === 503, '/ready reporting the lost connection')
    await publishPuts('after-', 20)
    brokerProxy.set('forward')

    // Assess
    await eventually(async () => (await rowsWithPrefix('after-')) === 20, 'writes applied after the reconnect', 20_000)
    expect((await fetch(`${host.url}/ready`)).status).toBe(200)
    await host.close()
    expect(await settledReady(iso.config.addQueue, 0)).toBe(0)
  })

  it('fails an invocation that outlives the function timeout from app.arc, and does not acknowledge it', async () => {
    // Prepare: a project whose consumer never finishes and whose app.arc says `timeout 1`.
    const project = mkdtempSync(join(tmpdir(), 'kvarc-slow-consumer-'))
    try {
      writeFileSync(join(project, 'app.arc'), [
        '@app', 'slowconsumer', '', '@aws', 'runtime typescript', 'timeout 1', '',
        '@rabbitmq', 'add-key', '  queue add_key', '  batch 10', '  window 0.01', '',
        '@plugins', 'esbuild-runtime', '  src plugins/esbuild-runtime/index.mjs', 'rabbitmq-consumers', '  src plugins/rabbitmq-consumers/index.mjs', '',
      ].join('\n'))
      symlinkSync(join(ROOT, 'plugins'), join(project, 'plugins'))
      symlinkSync(join(ROOT, 'scripts'), join(project, 'scripts'))
      symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'))
      mkdirSync(join(project, 'src', 'consumers', 'add-key'), { recursive: true })
      writeFileSync(join(project, 'src', 'consumers', 'add-key', 'index.ts'), '')
      mkdirSync(join(project, 'build', 'src', 'consumers', 'add-key'), { recursive: true })
      writeFileSync(join(project, 'build', 'src', 'consumers', 'add-key', 'index.mjs'), 'export const handler = () => new Promise(resolve => setTimeout(resolve, 60_000).unref())\n')
      const errors: string[] = []
      const logger = pino({ level: 'warn' }, { write: (line: string) => { errors.push(line) } })
      const host = await startConsumerHost({ cwd: project, ...queueBindings(iso.config), minBackoffMs: 20, maxBackoffMs: 100, logger })
      hosts.push(host)
      expect(host.consumers.map(c => c.timeoutMs)).toEqual([1000])

      // Act
      await publishPuts('timeout-', 1)
      await eventually(async () => (await counted(host.metrics.batches, { outcome: 'failed' })) >= 1, 'a timed-out invocation', 10_000)
      await host.close()

      // Assess
      expect(errors.join('\n')).toContain('add-key did not finish within its 1000 ms timeout')
      expect(await counted(host.metrics.batches, { outcome: 'ok' })).toBe(0)
      expect(await settledReady(iso.config.addQueue, 1)).toBe(1)
    } finally {
      rmSync(project, { recursive: true, force: true })
      // The message is the real consumer's to take now.
      const cleaner = await start()
      await eventually(async () => (await rowsWithPrefix('timeout-')) === 1, 'the timed-out write applied by a real consumer')
      await cleaner.close()
    }
  })

  it('runs each @scheduled function of app.arc hourly from its start, and on demand with a Scheduled Event', async () => {
    // Prepare: a tombstone past the (default, 7-day) horizon.
    await applyWrites(db, [{ key: 'scheduled-old', value: null, version: versionAtMillis(Date.now() - 8 * 86_400_000), deleted: true }], 0n)
    const before = Date.now()
    const host = await start()
    const after = Date.now()

    // Assess: purge-tombstones is due an hour after start, within the host's jitter (30 s).
    expect(host.scheduled).toEqual([{ name: 'purge-tombstones', schedule: 'rate(1 hour)', timeoutMs: 15_000 }])
    const next = host.scheduler.nextRun('purge-tombstones')!
    expect(next).toBeGreaterThanOrEqual(before + 3600_000)
    expect(next).toBeLessThan(after + 3600_000 + 30_000)

    // Act: the same invocation a timer makes, now.
    const result = await host.scheduler.runNow('purge-tombstones')

    // Assess
    expect(result).toEqual({ purged: 1, expired: 0, horizonVersion: expect.stringMatching(/^\d+$/) })
    expect(await rowsWithPrefix('scheduled-')).toBe(0)
    expect(await counted(host.metrics.scheduledRuns, { function: 'purge-tombstones', outcome: 'ok' })).toBe(1)
    await host.close()
  })

  it('runs no schedule when given none, and refuses a scheduled function app.arc does not declare', async () => {
    const host = await start({ scheduled: [] })
    expect(host.scheduled).toEqual([])
    await host.close()
    await expect(startConsumerHost({ cwd: ROOT, ...queueBindings(iso.config), scheduled: ['purge-everything'] })).rejects.toThrow(/no @scheduled function purge-everything/)
  })

  it('finishes and acknowledges the batch in flight when closed', async () => {
    // Prepare: every PostgreSQL round trip takes 300 ms, so a batch is still running when close() is called.
    proxy.set('slow', 300)
    const host = await start()
    await publishPuts('drain-', 200)
    await eventually(async () => host.consumers.some(c => c.source.batchesInFlight > 0), 'a batch in flight')

    // Act
    await host.close()
    proxy.set('forward')

    // Assess: whatever was taken is applied and acknowledged; the rest waits in the queue; nothing is lost or held.
    const applied = await rowsWithPrefix('drain-')
    expect(applied).toBeGreaterThan(0)
    expect(applied + await settledReady(iso.config.addQueue, 200 - applied)).toBe(200)
  })
})
