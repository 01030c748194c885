/**
 * Runs `arc sandbox` for the end-to-end tests: on free ports (its HTTP port and
 * its internal _arc port, which a second sandbox on the machine would otherwise
 * collide with), with an isolated environment passed to the functions by the
 * project's service-env plugin. `stop()` sends SIGINT to the process group
 * sandbox leads and reports how it ended.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'amqplib'
import getPort from 'get-port'
import { MAX_HEADER_BYTES } from '../../runtime/http/gateway.js'

export interface Sandbox {
  url: string
  port: number
  output(): string
  /** SIGINT to the group; SIGKILL after `graceMs`. Resolves with how the process ended. */
  stop(graceMs?: number): Promise<{ code: number | null, signal: NodeJS.Signals | null, killed: boolean }>
}

export async function startSandbox(env: Record<string, string>, options: { timeoutMs?: number } = {}): Promise<Sandbox> {
  // get-port hands a port out once per process (for 15 s at least), so the two differ.
  const port = await getPort()
  const internal = await getPort()
  const lines: string[] = []
  // 64 KiB of request line and headers, as `npm run sandbox` gives it (NODE_OPTIONS) and the warm hosts
  // take (runtime/http/gateway.ts MAX_HEADER_BYTES): an over-long key reaches its function, never a bare 431.
  const child = spawn(process.execPath, [`--max-http-header-size=${MAX_HEADER_BYTES}`, 'node_modules/@architect/architect/src/index.js', 'sandbox', '--port', String(port)], {
    cwd: process.cwd(),
    env: { ...process.env, ...env, PORT: String(port), ARC_INTERNAL_PORT: String(internal) },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so one signal reaches sandbox and the function processes it spawns.
    detached: true,
  })
  const keep = (chunk: Buffer) => { lines.push(chunk.toString()); if (lines.length > 400) lines.shift() }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  const url = `http://127.0.0.1:${port}`
  let stopping: ReturnType<Sandbox['stop']> | undefined
  const sandbox: Sandbox = {
    url,
    port,
    output: () => lines.join(''),
    stop: (graceMs = 10_000) => (stopping ??= stopChild(child, exited, graceMs)),
  }
  try {
    await waitReady(url, child, sandbox.output, options.timeoutMs ?? 60_000)
    // Sandbox answers HTTP before its startup plugins run: until the consumer plugin consumes,
    // a write stays queued, which on a loaded machine outlasts a test's wait for its outcome.
    const queues = [env.KVARC_ADD_QUEUE, env.KVARC_DEL_QUEUE].filter((q): q is string => Boolean(q))
    await waitConsuming(env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672', queues, child, sandbox.output, options.timeoutMs ?? 60_000)
  } catch (error) {
    await sandbox.stop(2000)
    throw error
  }
  return sandbox
}

async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    if (child.exitCode !== null) throw new Error(`sandbox exited with ${child.exitCode}:\n${output()}`)
    // Ready means the functions answer, not only the static files: /api/all reaches PostgreSQL.
    // With auth required (KVARC_AUTH=required) the function's 401 is the answer to wait for.
    const ok = await fetch(`${url}/api/all?limit=1`, { signal: AbortSignal.timeout(5000) }).then(r => r.status === 200 || r.status === 401, () => false)
    if (ok) return
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  throw new Error(`sandbox did not become ready at ${url} within ${timeoutMs} ms:\n${output()}`)
}

async function stopChild(child: ChildProcess, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>, graceMs: number) {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return { ...(await exited), killed: false }
  try { process.kill(-child.pid, 'SIGINT') } catch { /* already gone */ }
  let killed = false
  const timer = setTimeout(() => {
    killed = true
    try { process.kill(-child.pid!, 'SIGKILL') } catch { /* gone */ }
  }, graceMs)
  const result = await exited
  clearTimeout(timer)
  return { ...result, killed }
}

/** Resolves once every queue has a consumer (sandbox's RabbitMQ plugin started), bounded by `timeoutMs`. */
async function waitConsuming(amqpUrl: string, queues: string[], child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  if (queues.length === 0) return
  const connection = await connect(amqpUrl)
  connection.on('error', () => {})
  const deadline = Date.now() + timeoutMs
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`sandbox exited with ${child.exitCode}:\n${output()}`)
      const channel = await connection.createChannel()
      // A queue not declared yet closes the channel (404): that is "not yet", not a failure.
      channel.on('error', () => {})
      let ready = true
      try {
        for (const queue of queues) if ((await channel.checkQueue(queue)).consumerCount === 0) ready = false
      } catch {
        ready = false
      } finally {
        await channel.close().catch(() => {})
      }
      if (ready) return
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    throw new Error(`sandbox's consumers did not start within ${timeoutMs / 1000} s:\n${output()}`)
  } finally {
    await connection.close().catch(() => {})
  }
}
