/**
 * A stack for fault injection: the real one (ops/stack.ts: nginx, two
 * HTTP hosts, the consumer host) on free ports, isolated (its own database,
 * queues and cache prefix), optionally talking to the backing services through
 * fault proxies, so an outage can be injected into this stack alone.
 * The `target` always names the real services, for inspecting around the stack.
 */
import { SERVICES, isolate, type Isolated } from '../../support/isolated.js'
import { startStack, type Stack, type StackProcess } from '../../../ops/stack.js'
import { loadConfig, type Config } from '../../../src/shared/config.js'
import { FaultProxy } from './proxy.js'
import type { Target } from './scenario.js'

export interface FaultStackOptions {
  /** Names the isolated database/queues/prefix. */
  label: string
  /** Route the stack's service connections through fault proxies. */
  proxies?: boolean
  /** Extra environment for every process (e.g. KVARC_TOMBSTONE_HORIZON_MS). */
  env?: Record<string, string>
  /** Keep the database, queues and cache entries after close (for a look afterwards). */
  keepDatabase?: boolean
  consumerConcurrency?: number
}

export interface Proxies { postgres: FaultProxy, redis: FaultProxy, rabbitmq: FaultProxy }

export interface FaultStack {
  url: string
  /** The stack's config with the REAL service URLs (not the proxies). */
  config: Config
  env: Record<string, string>
  target: Target
  proxies: Proxies | undefined
  stack: Stack
  processes(): StackProcess[]
  /** Stops a child (not restarted by the stack's supervisor) until start(name): ops/stack.ts Stack.stop. */
  stop(name: string, signal?: NodeJS.Signals): Promise<void>
  /** A crash the stack's supervisor restarts by itself: ops/stack.ts Stack.kill. */
  kill(name: string, signal: NodeJS.Signals): Promise<void>
  start(name: string): Promise<void>
  close(): Promise<void>
}

function hostPort(url: string, defaultPort: number): { host: string, port: number } {
  const parsed = new URL(url)
  return { host: parsed.hostname, port: parsed.port ? Number(parsed.port) : defaultPort }
}

async function openProxies(): Promise<Proxies> {
  const proxies: Proxies = {
    postgres: new FaultProxy(hostPort(SERVICES.postgres, 5432)),
    redis: new FaultProxy(hostPort(SERVICES.redis, 6379)),
    rabbitmq: new FaultProxy(hostPort(SERVICES.amqp, 5672)),
  }
  await Promise.all(Object.values(proxies).map(p => p.listen()))
  return proxies
}

/** Keeps the last lines each child printed, for a failing test's message. */
export class OutputTail {
  private readonly lines: string[] = []
  add = (name: string, line: string) => {
    this.lines.push(`${name}: ${line}`)
    if (this.lines.length > 200) this.lines.shift()
  }

  text(): string { return this.lines.join('\n') }
}

export async function startFaultStack(options: FaultStackOptions, output = new OutputTail()): Promise<FaultStack & { output: OutputTail }> {
  const iso: Isolated = await isolate(options.label)
  let proxies: Proxies | undefined
  let stack: Stack | undefined
  try {
    // Errors only: a fault makes hosts log every failed batch, and those lines are what a failing test shows.
    const env: Record<string, string> = { ...iso.env, LOG_LEVEL: 'error', ...options.env }
    if (options.proxies) {
      proxies = await openProxies()
      env.DATABASE_URL = proxies.postgres.url(iso.env.DATABASE_URL as string)
      env.REDIS_URL = proxies.redis.url(iso.env.REDIS_URL as string)
      env.AMQP_URL = proxies.rabbitmq.url(iso.env.AMQP_URL as string)
    }
    stack = await startStack({ port: 0, env, onOutput: output.add, ...(options.consumerConcurrency ? { consumerConcurrency: options.consumerConcurrency } : {}) })
    const config = loadConfig({ ...iso.env, ...options.env })
    const running = stack
    const target: Target = {
      url: running.url, databaseUrl: config.databaseUrl, redisUrl: config.redisUrl, amqpUrl: config.amqpUrl,
      addQueue: config.addQueue, delQueue: config.delQueue, cachePrefix: config.cachePrefix,
      consumerUrls: () => running.processes().filter(p => p.role === 'consumer').map(p => p.url),
    }
    let closing: Promise<void> | undefined
    return {
      url: running.url, config, env, target, proxies, stack: running, output,
      processes: () => running.processes(),
      stop: (name, signal) => running.stop(name, signal),
      kill: (name, signal) => running.kill(name, signal),
      start: name => running.start(name),
      close: () => {
        closing ??= (async () => {
          const errors: unknown[] = []
          // Proxies up first, so the hosts can finish their work on the way down.
          for (const p of Object.values(proxies ?? {})) p.up()
          await running.close().catch(e => errors.push(e))
          for (const p of Object.values(proxies ?? {})) await p.close().catch((e: unknown) => errors.push(e))
          if (!options.keepDatabase) await iso.cleanup().catch(e => errors.push(e))
          if (errors.length) throw new AggregateError(errors, 'fault stack close failed')
        })()
        return closing
      },
    }
  } catch (error) {
    await stack?.close().catch(() => {})
    for (const p of Object.values(proxies ?? {})) await p.close().catch(() => {})
    await iso.cleanup().catch(() => {})
    throw new Error(`the stack did not start: ${(error as Error).message}\n${output.text()}`, { cause: error })
  }
}
