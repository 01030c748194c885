/**
 * One process supervisor: starts children, restarts the ones that die when
 * nobody asked them to (as compose's `restart: unless-stopped` does), and
 * stops them in order.
 *
 * - A child runs in its own process group, so one signal reaches it and
 *   anything it spawned (nginx's workers), and a Ctrl-C in the terminal reaches
 *   only the parent, which then stops the children in order.
 * - `start()` waits until the child is ready (its `ready` check). A child that
 *   dies while starting is not restarted: start() rejects, so a first start
 *   with a bad setting fails at once with the child's own words.
 * - Once started, any exit that `stop()` did not ask for is a crash: the rest
 *   of its process group is killed (orphaned nginx workers would keep the port),
 *   one line is logged (which child, code or signal, restart count, next
 *   delay), and it is spawned again after an exponential backoff, 100 ms
 *   doubling to 30 s, back to 100 ms once a run has lasted 10 s (Docker's
 *   restart policy uses the same numbers). Restarted children are not awaited:
 *   one that dies before it is ready is simply restarted again, later.
 * - `stop()` is the orderly stop: no restart from the moment it is called,
 *   the child's stop signal, SIGKILL after a grace period. `kill()` is a
 *   crash from outside (a fault test, a person's `kill -9`): it is restarted.
 *
 * Why our own module: the candidates on npm either are daemons that own the
 * processes themselves (pm2: the stack and its tests must own their children),
 * or kill process trees by listing `ps` output instead of signalling a process
 * group, have no readiness step and count restarts without a reset after a
 * stable run (respawn, forever-monitor). What kvarc needs is this page.
 *
 * @example
 *   const supervisor = new Supervisor({ onOutput: (name, line) => console.log(`[${name}] ${line}`) })
 *   const host = supervisor.add({ name: 'http-1', command: 'node', args: ['host.js'], ready: gone => waitReady(url, { timeoutMs: 30_000, abandon: gone }) })
 *   await host.start(); ...; await supervisor.close()
 */
import { spawn, type ChildProcess } from 'node:child_process'

export interface ChildSpec {
  name: string
  command: string
  args: readonly string[]
  cwd?: string
  env?: Record<string, string | undefined>
  /** How to ask it to stop gracefully. Default SIGTERM. */
  stopSignal?: NodeJS.Signals
  /**
   * Resolves once a process started by start() is ready; rejects when it cannot
   * be. `gone()` says why to stop waiting (the process exited), else undefined.
   */
  ready?: (gone: () => string | undefined) => Promise<void>
}

export interface Backoff {
  /** Delay before the first restart after a stable run. */
  initialMs: number
  /** Each further crash in a row multiplies the delay by this. */
  factor: number
  maxMs: number
  /** A run at least this long resets the delay to initialMs. */
  stableMs: number
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 100, factor: 2, maxMs: 30_000, stableMs: 10_000 }

/** One unexpected exit, as logged. */
export interface CrashEvent {
  name: string
  pid: number | undefined
  code: number | null
  signal: NodeJS.Signals | null
  /** How long that run lasted. */
  upMs: number
  /** Restarts of this child so far, this one included. */
  restarts: number
  /** When it is spawned again. */
  delayMs: number
  line: string
}

export interface SupervisorOptions {
  backoff?: Partial<Backoff>
  /** Grace period of stop() before SIGKILL. Default 25 s. */
  stopTimeoutMs?: number
  /** Every line a child prints, and the supervisor's own lines about it (exits, restarts). */
  onOutput?: (name: string, line: string) => void
  /** After each unexpected exit is logged, before the restart. */
  onCrash?: (event: CrashEvent) => void
  /** After a crashed child was spawned again. */
  onRestart?: (child: SupervisedChild) => void
  /** The clock runs are timed with (for the backoff reset). Default Date.now; tests pass their own. */
  now?: () => number
}

/**
 * stopped → starting → running → (crash) waiting → running …; stop() from any
 * state → stopping → stopped.
 */
export type ChildState = 'stopped' | 'starting' | 'running' | 'waiting' | 'stopping'

const TAIL_LINES = 40

interface Run {
  proc: ChildProcess
  startedAt: number
  /** Set once the process has exited (or failed to spawn). */
  exit: { code: number | null, signal: NodeJS.Signals | null, error?: string } | undefined
  exited: Promise<void>
}

export class SupervisedChild {
  private stateNow: ChildState = 'stopped'
  private run: Run | undefined
  private restartCount = 0
  /** Crashes in a row without a stable run: the backoff exponent. */
  private crashesInRow = 0
  private timer: NodeJS.Timeout | undefined
  private starting: Promise<void> | undefined
  private lines: string[] = []

  constructor(readonly spec: ChildSpec, private readonly owner: Supervisor) {}

  get name(): string { return this.spec.name }
  get state(): ChildState { return this.stateNow }
  /** The live process's pid; undefined while none runs. */
  get pid(): number | undefined { return this.run && !this.run.exit ? this.run.proc.pid : undefined }
  get running(): boolean { return this.pid !== undefined }
  /** Restarts after crashes since this supervisor started it (explicit start() calls do not count). */
  get restarts(): number { return this.restartCount }
  /** Its last lines of output, and the supervisor's lines about it. */
  tail(): string[] { return [...this.lines] }

  private record(line: string): void {
    this.lines.push(line)
    if (this.lines.length > TAIL_LINES) this.lines.shift()
    this.owner.options.onOutput?.(this.spec.name, line)
  }

  /**
   * Starts it (when stopped, or waiting to be restarted: then at once) and
   * waits until it is ready. Rejects, leaving it stopped, when it exits or
   * fails its ready check while starting.
   */
  start(): Promise<void> {
    if (this.owner.closed) return Promise.reject(new Error(`${this.name}: the supervisor is closed`))
    if (this.starting) return this.starting
    if (this.stateNow === 'running') return Promise.resolve()
    this.starting = (async () => {
      // A stop in progress finishes first; a pending restart is superseded by this start.
      if (this.stateNow === 'stopping') await this.run?.exited
      clearTimeout(this.timer)
      this.lines = []
      this.stateNow = 'starting'
      const run = this.spawn()
      try {
        await this.spec.ready?.(() => describeExit(run))
        if (run.exit) throw new Error(`${this.name} ${describeExit(run)} while starting`)
      } catch (error) {
        if (this.stateNow === 'starting') await this.stop('SIGKILL', 1000)
        throw error
      }
      if (this.stateNow === 'starting') this.stateNow = 'running'
    })().finally(() => { this.starting = undefined })
    return this.starting
  }

  /**
   * The orderly stop: never restarted. Sends `signal` (default: its stop
   * signal) to its process group, SIGKILL after `graceMs`, and resolves once it
   * has exited and nothing is left in its group. It stays stopped until start().
   */
  async stop(signal: NodeJS.Signals = this.spec.stopSignal ?? 'SIGTERM', graceMs = this.owner.stopTimeoutMs): Promise<void> {
    clearTimeout(this.timer)
    const run = this.run
    if (!run || run.exit) {
      this.stateNow = 'stopped'
      return
    }
    this.stateNow = 'stopping'
    const pid = run.proc.pid!
    signalGroup(pid, signal)
    const escalate = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs)
    await run.exited
    clearTimeout(escalate)
    if (this.run === run && this.stateNow === 'stopping') this.stateNow = 'stopped'
  }

  /**
   * A crash from outside, as `kill -<signal>` would be: signals the process
   * group and resolves once the process has exited. The supervisor restarts
   * it as it would after any crash. Nothing happens when no process runs.
   */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const run = this.run
    if (!run || run.exit || !run.proc.pid) return
    signalGroup(run.proc.pid, signal)
    await run.exited
  }

  private spawn(): Run {
    // detached: its own process group (see the module comment).
    const proc = spawn(this.spec.command, this.spec.args, { cwd: this.spec.cwd, env: this.spec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let settle!: () => void
    const run: Run = { proc, startedAt: this.owner.now(), exit: undefined, exited: new Promise<void>(resolve => { settle = resolve }) }
    this.run = run
    for (const stream of [proc.stdout, proc.stderr]) {
      let partial = ''
      stream?.setEncoding('utf8')
      stream?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) if (line) this.record(line)
      })
    }
    const ended = (code: number | null, signal: NodeJS.Signals | null, error?: string) => {
      if (run.exit) return
      run.exit = { code, signal, ...(error ? { error } : {}) }
      // The leader is gone; nothing it started may linger in its group (nginx workers hold the port).
      if (proc.pid) signalGroup(proc.pid, 'SIGKILL')
      this.exited(run)
      settle()
    }
    proc.once('exit', (code, signal) => ended(code, signal))
    proc.once('error', error => ended(null, null, error.message))
    return run
  }

  private exited(run: Run): void {
    if (this.run !== run) return
    if (this.stateNow !== 'running' || this.owner.closed) {
      // Asked for (stopping), or start()'s to report (starting), or the supervisor is closing.
      this.record(describeExit(run)!)
      return
    }
    const upMs = this.owner.now() - run.startedAt
    const backoff = this.owner.backoff
    if (upMs >= backoff.stableMs) this.crashesInRow = 0
    const delayMs = Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** this.crashesInRow)
    this.crashesInRow++
    this.restartCount++
    this.stateNow = 'waiting'
    const how = run.exit!.error ? `failed: ${run.exit!.error}` : run.exit!.signal ? `signal ${run.exit!.signal}` : `code ${run.exit!.code}`
    const line = `supervisor: ${this.name} exited unexpectedly (${how}) after ${seconds(upMs)} up; restart ${this.restartCount} in ${seconds(delayMs)}`
    this.record(line)
    this.owner.options.onCrash?.({ name: this.name, pid: run.proc.pid, code: run.exit!.code, signal: run.exit!.signal, upMs, restarts: this.restartCount, delayMs, line })
    this.timer = setTimeout(() => {
      if (this.stateNow !== 'waiting' || this.owner.closed) return
      this.stateNow = 'running'
      this.spawn()
      this.owner.options.onRestart?.(this)
    }, delayMs)
  }
}

export class Supervisor {
  readonly backoff: Backoff
  readonly stopTimeoutMs: number
  readonly now: () => number
  private readonly children = new Map<string, SupervisedChild>()
  private closedNow = false

  constructor(readonly options: SupervisorOptions = {}) {
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff }
    this.stopTimeoutMs = options.stopTimeoutMs ?? 25_000
    this.now = options.now ?? Date.now
  }

  /** True once close() began: nothing is restarted or started any more. */
  get closed(): boolean { return this.closedNow }

  /** Adds a child, stopped: start() starts it. */
  add(spec: ChildSpec): SupervisedChild {
    if (this.children.has(spec.name)) throw new Error(`a child named ${spec.name} is already supervised`)
    const child = new SupervisedChild(spec, this)
    this.children.set(spec.name, child)
    return child
  }

  get(name: string): SupervisedChild {
    const child = this.children.get(name)
    if (!child) throw new Error(`no process named ${name} here (there are: ${[...this.children.keys()].join(', ')})`)
    return child
  }

  list(): SupervisedChild[] {
    return [...this.children.values()]
  }

  private closing: Promise<void> | undefined

  /**
   * Idempotent: no more restarts from now on, then stops the children group by
   * group, in the order given (each group at once); children in no group last.
   */
  close(order: readonly (readonly string[])[] = []): Promise<void> {
    this.closedNow = true
    this.closing ??= (async () => {
      const named = new Set(order.flat())
      const groups = [...order.map(names => names.map(name => this.get(name))), this.list().filter(c => !named.has(c.name))]
      for (const group of groups) await Promise.allSettled(group.map(child => child.stop()))
    })()
    return this.closing
  }
}

function describeExit(run: Run): string | undefined {
  const exit = run.exit
  if (!exit) return undefined
  if (exit.error) return `failed to start: ${exit.error}`
  return `exited (${exit.signal ?? `code ${exit.code}`})`
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // ESRCH: the group is already gone.
  }
}
