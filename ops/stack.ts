/**
 * The whole system on one machine, as child processes: nginx in front of two
 * warm HTTP hosts, and the consumer host. The hosts are their bundles
 * (build/ops/http-host-main.mjs, consumer-host-main.mjs) run by plain node, as
 * the platform image runs them; nginx runs nginx/kvarc.conf.template rendered
 * by ops/nginx-config.ts. Backing services are checked and prepared (database,
 * schema, queues) before any host starts. Every child runs
 * is supervised (ops/supervisor.ts): one that dies unexpectedly is restarted
 * with backoff and counted; `close()` (and `npm start`'s Ctrl-C) stops all of
 * it in order, grandchildren included. Where nginx is not installed, one HTTP
 * host serves API and public/ on the port itself.
 *
 * @example
 *   const stack = await startStack({ port: 8080 })
 *   await stack.kill('consumer', 'SIGKILL')    // a crash: the supervisor restarts it
 *   await stack.stop('http-1', 'SIGKILL'); await stack.start('http-1')   // down until started again
 *   await stack.close()
 */
import { accessSync, chmodSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join, relative } from 'node:path'
import { loadConfig } from '../src/shared/config.js'
import { readNginxTemplate, renderNginxConfig } from './nginx-config.js'
import { NotReadyError, waitReady } from './readiness.js'
import { Supervisor, type Backoff, type SupervisedChild } from './supervisor.js'
import { prepareBackingServices } from './backing-services.js'

export interface StackOptions {
  /** Project root (app.arc, build/ with the functions' and the hosts' bundles, public/, nginx/). Default: the current directory. */
  cwd?: string
  /** Where the stack answers; 0 picks a free port. */
  port: number
  /** Address nginx (or the lone host) listens on. Default 127.0.0.1. */
  listenHost?: string
  /** Merged over process.env for the config and every child: service URLs, queue names, LOG_LEVEL... */
  env?: Record<string, string | undefined>
  /** HTTP hosts behind nginx. Default 2. */
  httpHosts?: number
  /** 'auto' (default): use nginx when installed. false: one host directly on the port. */
  nginx?: 'auto' | boolean
  /** The nginx binary; default: looked up on PATH, /usr/sbin, /usr/local/sbin, /usr/local/nginx/sbin. */
  nginxBinary?: string
  nginxWorkers?: number | 'auto'
  /** Log every request in nginx's access log (in its temp prefix). Default off: it costs throughput. */
  accessLog?: boolean
  /** Consumer batches in flight per queue (KVARC_CONSUMER_CONCURRENCY). */
  consumerConcurrency?: number
  /** Every line a child prints, as it prints it. Default: kept (last lines) for error messages only. */
  onOutput?: (name: string, line: string) => void
  /** Bound on each child's start-up. Default 30 s. */
  readyTimeoutMs?: number
  /** Bound on each child's graceful stop before SIGKILL. Default 25 s. */
  stopTimeoutMs?: number
  /** Restart backoff of crashed children (ops/supervisor.ts DEFAULT_BACKOFF). */
  restartBackoff?: Partial<Backoff>
  /** A crashed child was spawned again (its restart count is in `processes()`). */
  onRestart?: (process: StackProcess) => void
}

export type Role = 'nginx' | 'http' | 'consumer'

export interface StackProcess {
  name: string
  role: Role
  pid: number | undefined
  running: boolean
  /** Where it listens (the consumer host: its /health, /ready, /metrics). */
  url: string
  /** Its readiness URL (ops/readiness.ts probes it). */
  readyUrl: string
  /** Times the supervisor restarted it after it died unexpectedly. */
  restarts: number
}

export interface Stack {
  /** Where clients go: nginx, or the lone host. */
  url: string
  nginx: boolean
  /** Lines worth telling the person who started the stack (e.g. how to install nginx). */
  notices: string[]
  processes(): StackProcess[]
  /**
   * A supervised stop: the child is not restarted; it stays down until
   * `start(name)`. `signal` defaults to its graceful one (SIGTERM, nginx
   * SIGQUIT); SIGKILL stops it abruptly. Resolves once it has exited.
   */
  stop(name: string, signal?: NodeJS.Signals): Promise<void>
  /**
   * A crash from outside, as `kill -<signal> <pid>`: signals the child's process
   * group and resolves once it has exited. The supervisor restarts it by itself
   * (after its backoff delay, `restarts` + 1); wait for its readyUrl to know it is back.
   */
  kill(name: string, signal: NodeJS.Signals): Promise<void>
  /** Starts a stopped child again (or a crashed one at once), on the same port, and waits until it is ready. */
  start(name: string): Promise<void>
  /** Idempotent: nginx first (no new requests), then the HTTP hosts (draining), then the consumer host (finishing its batches). */
  close(): Promise<void>
}

export class StackStartError extends Error {
  override name = 'StackStartError'
}

/** A free TCP port on 127.0.0.1 (the OS's pick; the short race until the child binds it is accepted). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** The nginx binary, or undefined when it is not installed. */
export function findNginx(explicit?: string): string | undefined {
  const candidates = explicit ? [explicit] : [
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map(dir => join(dir, 'nginx')),
    '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx',
  ]
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch { /* next candidate */ }
  }
  return undefined
}

interface ChildSpec {
  name: string
  role: Role
  command: string
  args: string[]
  env: Record<string, string | undefined>
  /** GET until 200: the child is ready. */
  readyUrl: string
  url: string
  /** How to ask it to stop gracefully. */
  stopSignal: NodeJS.Signals
}

/**
 * Prepares the backing services, then starts the HTTP hosts, the consumer host
 * and nginx, each ready before it returns. Throws a BackingServiceError (which
 * service, where, how to start it) or a StackStartError (which child, its last
 * output); whatever had started is stopped again.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const cwd = options.cwd ?? process.cwd()
  // The hosts run as production runs them: plain node on their bundles (scripts/build-ops.mjs).
  // Stack traces through the source maps point at the TypeScript, as they did under tsx
  // (the platform image sets the same in NODE_OPTIONS); the cost is paid only when a stack is read.
  const bundle = (name: string) => {
    const file = join(cwd, 'build', 'ops', `${name}.mjs`)
    if (!existsSync(file)) throw new StackStartError(`${relative(cwd, file)} is missing: run npm run build`)
    return { command: process.execPath, args: ['--enable-source-maps', file] }
  }
  const httpHost = bundle('http-host-main')
  const consumerHost = bundle('consumer-host-main')
  const baseEnv: Record<string, string | undefined> = { ...process.env, ...options.env }
  const config = loadConfig(baseEnv)
  await prepareBackingServices(config)

  const listenHost = options.listenHost ?? '127.0.0.1'
  const port = options.port === 0 ? await freePort(listenHost) : options.port
  const nginxBinary = options.nginx === false ? undefined : findNginx(options.nginxBinary)
  if (options.nginx === true && !nginxBinary) throw new StackStartError('nginx is not installed (apt-get install -y nginx), or pass nginxBinary')
  const useNginx = nginxBinary !== undefined
  const notices = useNginx ? [] : ['nginx is not installed: one HTTP host serves the API and public/ directly; for nginx in front of two hosts: apt-get install -y nginx']

  const specs: ChildSpec[] = []
  const hostCount = useNginx ? Math.max(1, options.httpHosts ?? 2) : 1
  const hostPorts: number[] = []
  for (let i = 1; i <= hostCount; i++) {
    const hostPort = useNginx ? await freePort() : port
    hostPorts.push(hostPort)
    const address = useNginx ? '127.0.0.1' : listenHost
    const local = `http://127.0.0.1:${hostPort}`
    specs.push({
      name: `http-${i}`, role: 'http', ...httpHost,
      env: { ...baseEnv, PORT: String(hostPort), HOST: address, KVARC_HOST_NAME: `http-${i}`, KVARC_SERVE_STATIC: useNginx ? '0' : '1' },
      readyUrl: `${local}/ready`, url: `http://${address}:${hostPort}`, stopSignal: 'SIGTERM',
    })
  }
  const metricsPort = await freePort()
  specs.push({
    name: 'consumer', role: 'consumer', ...consumerHost,
    env: {
      ...baseEnv, KVARC_HOST_NAME: 'consumer', KVARC_METRICS_PORT: String(metricsPort),
      ...(options.consumerConcurrency ? { KVARC_CONSUMER_CONCURRENCY: String(options.consumerConcurrency) } : {}),
    },
    readyUrl: `http://127.0.0.1:${metricsPort}/ready`, url: `http://127.0.0.1:${metricsPort}`, stopSignal: 'SIGTERM',
  })

  /** A write rate from the stack's environment (nginx's limit_req), or undefined for the default. */
  const rate = (name: string) => {
    const raw = baseEnv[name]
    if (raw === undefined || raw === '') return undefined
    if (!/^[1-9][0-9]{0,6}$/.test(raw)) throw new StackStartError(`${name} must be writes a second, a whole number from 1 to 9999999, got ${JSON.stringify(raw)}`)
    return Number(raw)
  }
  let prefix: string | undefined
  if (nginxBinary) {
    prefix = mkdtempSync(join(tmpdir(), 'kvarc-nginx-'))
    // nginx's workers drop root privileges (to nobody): they must be able to reach the temp paths here.
    chmodSync(prefix, 0o755)
    const listen = listenHost === '0.0.0.0' ? String(port) : `${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`
    writeFileSync(join(prefix, 'nginx.conf'), renderNginxConfig(readNginxTemplate(cwd), {
      prefix, listen, upstreams: hostPorts.map(hostPort => `127.0.0.1:${hostPort}`), publicDir: join(cwd, 'public'),
      errorLog: join(prefix, 'error.log'), accessLog: options.accessLog ? join(prefix, 'access.log') : 'off',
      workers: options.nginxWorkers ?? 'auto',
      writesPerAddress: rate('KVARC_WRITES_PER_ADDRESS'), writesPerToken: rate('KVARC_WRITES_PER_TOKEN'),
      limitLoopback: baseEnv.KVARC_RATE_LIMIT_LOOPBACK === '1',
    }))
    specs.push({
      name: 'nginx', role: 'nginx', command: nginxBinary,
      // -e: the error log nginx opens before it has read the config, otherwise /var/log/nginx (root only).
      args: ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')],
      env: baseEnv, readyUrl: `http://127.0.0.1:${port}/health`, url: `http://${listenHost}:${port}`,
      // SIGQUIT: graceful (finish the requests in progress); SIGTERM would drop them.
      stopSignal: 'SIGQUIT',
    })
  }

  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000
  const roles = new Map(specs.map(spec => [spec.name, spec]))
  const describe = (c: SupervisedChild): StackProcess => {
    const spec = roles.get(c.name)!
    return { name: c.name, role: spec.role, pid: c.pid, running: c.running, url: spec.url, readyUrl: spec.readyUrl, restarts: c.restarts }
  }
  const supervisor = new Supervisor({
    stopTimeoutMs: options.stopTimeoutMs ?? 25_000,
    ...(options.restartBackoff ? { backoff: options.restartBackoff } : {}),
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    onRestart: c => options.onRestart?.(describe(c)),
  })
  for (const spec of specs) {
    const child: SupervisedChild = supervisor.add({
      name: spec.name, command: spec.command, args: spec.args, cwd, env: spec.env, stopSignal: spec.stopSignal,
      ready: gone => waitReady(spec.readyUrl, { timeoutMs: readyTimeoutMs, abandon: gone }).catch((error: unknown) => {
        if (!(error instanceof NotReadyError)) throw error
        const tail = child.tail().join('\n  ')
        throw new StackStartError(error.why === 'abandoned'
          ? `${spec.name} exited while starting:\n  ${tail}`
          : `${spec.name} was not ready at ${spec.readyUrl} within ${readyTimeoutMs} ms:\n  ${tail}`)
      }),
    })
  }
  const names = (role: Role) => specs.filter(spec => spec.role === role).map(spec => spec.name)

  let closing: Promise<void> | undefined
  const close = () => {
    // nginx first (no new requests), then the HTTP hosts (draining), then the consumer host (finishing its batches).
    closing ??= supervisor.close([names('nginx'), names('http'), names('consumer')]).then(() => {
      if (prefix) rmSync(prefix, { recursive: true, force: true })
    })
    return closing
  }

  try {
    // Hosts start together (each loads its bundles); nginx last, so its first request finds them up.
    await Promise.all([...names('http'), ...names('consumer')].map(name => supervisor.get(name).start()))
    await Promise.all(names('nginx').map(name => supervisor.get(name).start()))
  } catch (error) {
    await close()
    throw error
  }

  const child = (name: string) => {
    if (!roles.has(name)) throw new Error(`no process named ${name} in this stack (there are: ${[...roles.keys()].join(', ')})`)
    return supervisor.get(name)
  }

  return {
    url: `http://${listenHost === '0.0.0.0' ? '127.0.0.1' : listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`,
    nginx: useNginx,
    notices,
    processes: () => supervisor.list().map(describe),
    stop: (name, signal) => child(name).stop(signal),
    kill: (name, signal) => child(name).kill(signal),
    start: async name => {
      if (closing) throw new Error('the stack is closing')
      await child(name).start()
    },
    close,
  }
}
