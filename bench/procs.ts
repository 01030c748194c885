/**
 * Child processes the bench starts itself (baseline servers, sandbox
 * instances, nginx), free ports, and resident memory read from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import getPort from 'get-port'

/**
 * A free TCP port (get-port), never 8080 or 3333 (the stack's and sandbox's
 * defaults): get-port's `exclude` filters only preferred ports, not the one the
 * OS picks, hence the check here.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await getPort()
    if (port !== 8080 && port !== 3333) return port
  }
  throw new Error('no free port found')
}

/** Resolves once something accepts TCP connections on the port; bounded by `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process ${child.pid} exited (${child.exitCode}) before listening on ${port}`)
    const ok = await new Promise<boolean>(resolve => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`)
}

export interface Managed {
  name: string
  child: ChildProcess
  /** Last lines of stdout+stderr, for error messages. */
  tail(): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>
}

/** Spawns a process in its own process group (so stop() also ends what it spawned). */
export function startProcess(name: string, command: string, args: string[], options: { env?: NodeJS.ProcessEnv, cwd?: string } = {}): Managed {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let log = ''
  const keep = (chunk: Buffer) => { log = (log + chunk.toString()).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  child.on('error', error => keep(Buffer.from(String(error))))
  const exited = new Promise<void>(resolve => {
    if (child.exitCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
  let stopping: Promise<void> | undefined
  return {
    name,
    child,
    tail: () => log,
    stop(graceMs = 5000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.pid === undefined) return
        signalGroup(child.pid, 'SIGTERM')
        const timer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
        // Whatever the process left in its group (sandbox's per-request children) goes too.
        signalGroup(child.pid, 'SIGKILL')
      })()
      return stopping
    },
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal) } catch { /* already gone */ }
}

export interface ProcessInfo { pid: number, ppid: number, comm: string }

function readStat(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm is in parentheses and may hold spaces; the fields after the last ')' are fixed.
    const close = stat.lastIndexOf(')')
    const comm = stat.slice(stat.indexOf('(') + 1, close)
    const fields = stat.slice(close + 2).split(' ')
    return { pid, ppid: Number(fields[1]), comm }
  } catch {
    return undefined
  }
}

/** The process and all its descendants, parents first. */
export function processTree(root: number): ProcessInfo[] {
  const all: ProcessInfo[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    const info = readStat(Number(entry))
    if (info) all.push(info)
  }
  const self = all.find(p => p.pid === root)
  if (!self) return []
  const out = [self]
  for (let i = 0; i < out.length; i++) {
    for (const p of all) if (p.ppid === out[i]!.pid) out.push(p)
  }
  return out
}

/** Resident set size in KiB (VmRSS), or undefined when the process is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const match = /VmRSS:\s+([0-9]+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

/** The command line, shortened: enough to tell an HTTP host from a consumer host. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 160)
  } catch {
    return ''
  }
}

/** User+system CPU seconds a process has used so far (from /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the comm.
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

/** CPU seconds of this process's waited-for children (wrk runs as one): cutime + cstime of /proc/self/stat. */
export function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[13]) + Number(fields[14])) / 100
}

/** Busy CPU seconds of the whole machine so far (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  const [, ...values] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
  const [user, nice, system, , , irq, softirq, steal] = values.map(Number)
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100
}

/** Pids whose command name is one of `names` (e.g. redis-server, beam.smp). */
export function pidsByComm(names: readonly string[]): number[] {
  const out: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    const info = readStat(Number(entry))
    if (info && names.includes(info.comm)) out.push(info.pid)
  }
  return out
}

/**
 * Per-group CPU seconds between two snapshots keyed `group#pid`: each pid's
 * growth, summed by group. A process that exited in between drops out instead
 * of making the total negative; one that started counts from zero.
 */
export function cpuDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, seconds] of Object.entries(after)) {
    const group = key.split('#')[0]!
    out[group] = (out[group] ?? 0) + Math.max(0, seconds - (before[key] ?? 0))
  }
  return out
}
