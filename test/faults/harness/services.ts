/**
 * Stopping and starting the machine's real backing services, for the fault
 * suite only. Other engineers' tests share these services, so every outage is
 * bounded: `withOutage` brings the service back in a `finally`, and
 * `ensureServicesUp` (called in the suites' afterAll) starts whatever is down
 * and waits until it answers.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, readdirSync } from 'node:fs'
import { promisify } from 'node:util'
import { connect } from 'amqplib'
import { Redis } from 'ioredis'
import pg from 'pg'
import { SERVICES } from '../../support/isolated.js'

const run = promisify(execFile)
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

export type Service = 'postgres' | 'rabbitmq' | 'redis'

function pgVersion(): string {
  const versions = readdirSync('/etc/postgresql')
  if (versions.length === 0) throw new Error('no PostgreSQL cluster under /etc/postgresql')
  return versions.sort()[versions.length - 1] as string
}

async function sh(command: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await run(command, args, { timeout: timeoutMs })
  return stdout
}

/** True when the service answers a trivial request within a couple of seconds. */
export async function answers(service: Service): Promise<boolean> {
  try {
    if (service === 'postgres') {
      const client = new pg.Client({ connectionString: `${SERVICES.postgres}/postgres`, connectionTimeoutMillis: 2000 })
      try {
        await client.connect()
        await client.query('SELECT 1')
      } finally {
        await client.end().catch(() => {})
      }
    } else if (service === 'redis') {
      const redis = new Redis(SERVICES.redis, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null })
      redis.on('error', () => {})
      try {
        await redis.connect()
        await redis.ping()
      } finally {
        redis.disconnect()
      }
    } else {
      const connection = await connect(SERVICES.amqp, { timeout: 2000 })
      await connection.close()
    }
    return true
  } catch {
    return false
  }
}

export async function waitAnswers(service: Service, timeoutMs: number): Promise<number> {
  const started = Date.now()
  while (!(await answers(service))) {
    if (Date.now() - started > timeoutMs) throw new Error(`${service} did not answer within ${timeoutMs} ms`)
    await sleep(100)
  }
  return Date.now() - started
}

/** How a service goes down. RabbitMQ 'app' stops the broker application but keeps the Erlang node. */
export type StopMode = 'default' | 'app'

export async function stopService(service: Service, mode: StopMode = 'default'): Promise<void> {
  if (service === 'postgres') {
    await sh('pg_ctlcluster', ['--skip-systemctl-redirect', pgVersion(), 'main', 'stop', '-m', 'fast'])
  } else if (service === 'redis') {
    await sh('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'shutdown', 'nosave']).catch(() => {}) // the connection drops as it exits
  } else if (mode === 'app') {
    await sh('rabbitmqctl', ['stop_app'])
  } else {
    await sh('rabbitmqctl', ['stop'])
  }
}

/** Starts a service (the preamble's commands) and waits until it answers. */
export async function startService(service: Service): Promise<void> {
  if (service === 'postgres') {
    await sh('pg_ctlcluster', ['--skip-systemctl-redirect', pgVersion(), 'main', 'start']).catch(async error => {
      if (!(await answers('postgres'))) throw error
    })
  } else if (service === 'redis') {
    mkdirSync('/var/lib/redis', { recursive: true })
    mkdirSync('/var/log/redis', { recursive: true })
    await sh('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '-::1', '--port', '6379', '--save', '', '--appendonly', 'no', '--dir', '/var/lib/redis', '--logfile', '/var/log/redis/ci.log'])
  } else {
    // After stop_app the node is still up and only start_app brings the broker back; after a full stop it fails fast.
    const appStarted = await sh('rabbitmqctl', ['start_app'], 120_000).then(() => true, () => false)
    if (!appStarted) {
      // -detached returns before the node registers with epmd (await_startup then fails with
      // "node not running at all"): waitAnswers below polls AMQP instead.
      await sh('rabbitmq-server', ['-detached'])
    }
  }
  await waitAnswers(service, 120_000)
}

/**
 * Takes a service down, runs `during`, and always starts it again (even when
 * `during` throws). Returns how long the service took to answer again after
 * the start command began.
 */
export async function withOutage(service: Service, during: () => Promise<void>, mode: StopMode = 'default'): Promise<{ downMs: number, startMs: number }> {
  const stopped = Date.now()
  let starting = 0
  try {
    await stopService(service, mode)
    await during()
  } finally {
    starting = Date.now()
    await startService(service)
  }
  return { downMs: starting - stopped, startMs: Date.now() - starting }
}

/** Starts every service that does not answer; returns the ones it had to start. Call it in afterAll. */
export async function ensureServicesUp(): Promise<Service[]> {
  const started: Service[] = []
  for (const service of ['postgres', 'redis', 'rabbitmq'] as const) {
    if (await answers(service)) continue
    await startService(service)
    started.push(service)
  }
  return started
}
