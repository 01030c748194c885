/**
 * The systems under test, each behind nginx on its own port, each on its own
 * database, queues and cache prefix:
 *   kvarc     the stack (ops/stack.ts): nginx → two warm HTTP hosts, plus the consumer host
 *   kvarc-noauth  the same with auth off, next to kvarc with auth required (--auth): the check's cost
 *   baseline  nginx → two bench/baseline.ts processes
 *   etcd      one etcd member, reached directly (bench/etcd.ts)
 *   sandbox   nginx → two `arc sandbox` instances
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { LoadMode, Scenario } from './load.js'
import { startNginx } from './nginx.js'
import { freePort, startProcess, waitForPort, type Managed } from './procs.js'

export type SideName = 'kvarc' | 'kvarc-noauth' | 'baseline' | 'etcd' | 'sandbox'

/** The sides that run kvarc's own stack, consumer included. */
export function isKvarc(name: SideName): boolean {
  return name === 'kvarc' || name === 'kvarc-noauth'
}

export interface NamedPid { name: string, pid: number }

export interface Side {
  name: SideName
  url: string
  /** The top-level processes of this side (hosts, consumer, nginx master); /proc gives their children. */
  processes(): NamedPid[]
  /** Only kvarc has a consumer: stopping it lets a backlog build up for the drain measurement. */
  stopConsumer?(): Promise<void>
  startConsumer?(): Promise<void>
  /** Restarts processes of this side that died (a backing service went away under them); returns their names. */
  heal?(): Promise<string[]>
  /** The wrk mode that sends `scenario` in the side's own API (etcd's gateway); kvarc's API when absent. */
  loadMode?(scenario: Scenario): LoadMode
  /** The consumer host's /metrics, when it serves one. */
  consumerMetricsUrl?(): string | undefined
  close(): Promise<void>
}

const ROOT = resolve(import.meta.dirname, '..')
const TSX = ['--import', 'tsx']

function pids(managed: Managed[]): NamedPid[] {
  return managed.filter(m => m.child.pid !== undefined && m.child.exitCode === null).map(m => ({ name: m.name, pid: m.child.pid! }))
}

async function closeAll(managed: Managed[]): Promise<void> {
  await Promise.all(managed.map(m => m.stop()))
}

/** Two baseline servers behind nginx. */
export async function startBaselineSide(env: Record<string, string>): Promise<Side> {
  const managed: Managed[] = []
  try {
    const ports = [await freePort(), await freePort()]
    const spawnServer = async (i: number) => {
      const server = startProcess(`baseline-${i + 1}`, process.execPath, [...TSX, join(ROOT, 'bench/baseline.ts')], {
        cwd: ROOT, env: { ...process.env, ...env, PORT: String(ports[i]), HOST: '127.0.0.1' },
      })
      managed[i] = server
      await waitForPort(ports[i]!, 20_000, server.child).catch(error => { throw new Error(`${error.message}\n${server.tail()}`) })
    }
    for (let i = 0; i < ports.length; i++) await spawnServer(i)
    const port = await freePort()
    managed.push(await startNginx({ dir: mkdtempSync(join(tmpdir(), 'kvarc-bench-nginx-')), port, upstreams: ports }))
    return {
      name: 'baseline',
      url: `http://127.0.0.1:${port}`,
      processes: () => pids(managed),
      async heal() {
        const restarted: string[] = []
        for (let i = 0; i < ports.length; i++) {
          if (managed[i]!.child.exitCode === null && managed[i]!.child.signalCode === null) continue
          restarted.push(managed[i]!.name)
          await spawnServer(i)
        }
        return restarted
      },
      close: () => closeAll(managed),
    }
  } catch (error) {
    await closeAll(managed)
    throw error
  }
}

/**
 * Two `arc sandbox` instances behind nginx. Each needs its own internal port
 * (ARC_INTERNAL_PORT); they start one after the other because each rebuilds
 * the bundles on start.
 */
export async function startSandboxSide(env: Record<string, string>): Promise<Side> {
  const managed: Managed[] = []
  try {
    const ports = [await freePort(), await freePort()]
    for (const [i, port] of ports.entries()) {
      const sandbox = startProcess(`sandbox-${i + 1}`, process.execPath, [join(ROOT, 'node_modules/@architect/architect/src/index.js'), 'sandbox', '--port', String(port)], {
        cwd: ROOT,
        env: { ...process.env, ...env, ARC_INTERNAL_PORT: String(await freePort()), ARC_EVENTS_PORT: String(await freePort()), ARC_TABLES_PORT: String(await freePort()) },
      })
      managed.push(sandbox)
      await waitForPort(port, 90_000, sandbox.child).catch(error => { throw new Error(`${error.message}\n${sandbox.tail()}`) })
    }
    const port = await freePort()
    managed.push(await startNginx({ dir: mkdtempSync(join(tmpdir(), 'kvarc-bench-nginx-')), port, upstreams: ports }))
    return { name: 'sandbox', url: `http://127.0.0.1:${port}`, processes: () => pids(managed), close: () => closeAll(managed) }
  } catch (error) {
    await closeAll(managed)
    throw error
  }
}

/** kvarc: the stack (ops/stack.ts) as `npm start` runs it, on a free port with the bench's isolated environment. */
export async function startKvarcSide(env: Record<string, string>, name: 'kvarc' | 'kvarc-noauth' = 'kvarc'): Promise<Side> {
  const { startStack } = await import('../ops/stack.js')
  const stack = await startStack({ cwd: ROOT, port: 0, env, nginx: true })
  const consumers = () => stack.processes().filter(p => p.role === 'consumer').map(p => p.name)
  return {
    name,
    url: stack.url.replace(/\/$/, ''),
    processes: () => stack.processes().filter((p): p is typeof p & { pid: number } => p.running && typeof p.pid === 'number').map(p => ({ name: p.name, pid: p.pid })),
    async stopConsumer() {
      for (const name of consumers()) await stack.stop(name, 'SIGTERM')
    },
    async startConsumer() {
      for (const name of consumers()) await stack.start(name)
    },
    consumerMetricsUrl() {
      const consumer = stack.processes().find(p => p.role === 'consumer')
      return consumer ? `${consumer.url}/metrics` : undefined
    },
    close: () => stack.close(),
  }
}

/**
 * kvarc assembled by the bench from the platform's entry points: nginx (the
 * bench's config) → two `ops/http-host-main.ts`, plus one
 * `ops/consumer-host-main.ts`. Used when the stack is not available, and
 * to tell the platform's cost from the stack's configuration.
 */
export async function startKvarcHostsSide(env: Record<string, string>, options: { hosts?: number, name?: 'kvarc' | 'kvarc-noauth' } = {}): Promise<Side> {
  const managed: Managed[] = []
  const hostEnv = { ...process.env, ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'warn' }
  let consumer: Managed | undefined
  const startConsumer = async () => {
    consumer = startProcess('consumer', process.execPath, [...TSX, join(ROOT, 'ops/consumer-host-main.ts')], { cwd: ROOT, env: { ...hostEnv, KVARC_HOST_NAME: 'bench-consumer' } })
    await waitForLine(consumer, /consuming/, 30_000)
  }
  try {
    const ports: number[] = []
    for (let i = 0; i < (options.hosts ?? 2); i++) {
      const port = await freePort()
      const host = startProcess(`http-host-${i + 1}`, process.execPath, [...TSX, join(ROOT, 'ops/http-host-main.ts')], {
        cwd: ROOT, env: { ...hostEnv, PORT: String(port), HOST: '127.0.0.1', KVARC_HOST_NAME: `bench-${i + 1}` },
      })
      managed.push(host)
      ports.push(port)
      await waitForPort(port, 30_000, host.child).catch(error => { throw new Error(`${error.message}\n${host.tail()}`) })
    }
    const port = await freePort()
    managed.push(await startNginx({ dir: mkdtempSync(join(tmpdir(), 'kvarc-bench-nginx-')), port, upstreams: ports }))
    await startConsumer()
    return {
      name: options.name ?? 'kvarc',
      url: `http://127.0.0.1:${port}`,
      processes: () => pids(consumer ? [...managed, consumer] : managed),
      async stopConsumer() {
        await consumer?.stop(30_000)
        consumer = undefined
      },
      startConsumer,
      async close() {
        await Promise.all([closeAll(managed), consumer?.stop()])
      },
    }
  } catch (error) {
    await Promise.all([closeAll(managed), consumer?.stop()])
    throw error
  }
}

/** Resolves once the process printed a line matching `pattern`. */
async function waitForLine(managed: Managed, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!pattern.test(managed.tail())) {
    if (managed.child.exitCode !== null) throw new Error(`${managed.name} exited (${managed.child.exitCode}):\n${managed.tail()}`)
    if (Date.now() > deadline) throw new Error(`${managed.name} did not start within ${timeoutMs} ms:\n${managed.tail()}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

export { waitForPort }
