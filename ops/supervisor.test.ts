/**
 * The supervisor with tiny real children (`node -e`): restarts after a crash,
 * backoff and its reset, the orderly stop that never restarts, a failed first
 * start, process groups. No test waits for a time to pass: each waits for a
 * condition (bounded), and the backoff reset runs on a clock the test moves.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { Supervisor, type ChildSpec, type CrashEvent } from './supervisor.js'
import { eventually } from '../test/support/isolated.js'

/** A child that prints "ready" (after `setup`) and then lives until signalled. */
const node = (name: string, setup = '', extra: Partial<ChildSpec> = {}): ChildSpec => ({
  name, command: process.execPath, args: ['-e', `${setup}; console.log('ready'); setInterval(() => {}, 1000)`], ...extra,
})

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

let supervisor: Supervisor | undefined
afterEach(async () => { await supervisor?.close() })

function supervise(options: ConstructorParameters<typeof Supervisor>[0] = {}) {
  const crashes: CrashEvent[] = []
  const lines: string[] = []
  supervisor = new Supervisor({ onCrash: e => crashes.push(e), onOutput: (name, line) => lines.push(`${name}: ${line}`), ...options })
  return { supervisor, crashes, lines }
}

/** ready: the child printed "ready" (its signal handlers are installed by then); rejects once it is gone. */
const printedReady = (s: Supervisor, name: string) => async (gone: () => string | undefined) => {
  const deadline = Date.now() + 20_000
  while (!s.get(name).tail().includes('ready')) {
    const why = gone()
    if (why) throw new Error(why)
    if (Date.now() > deadline) throw new Error(`${name} did not print ready within 20 s`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('Supervisor', () => {
  it('restarts a child killed from outside, logs it with code/signal, count and delay, and counts it', async () => {
    // Prepare
    const { supervisor: s, crashes, lines } = supervise({ backoff: { initialMs: 50 } })
    const child = s.add(node('worker'))
    await child.start()
    const first = child.pid!

    // Act: a crash (kill -9 from outside)
    await child.kill('SIGKILL')

    // Assess: counted and scheduled before kill() resolves; a new process once the delay passed
    expect(child.restarts).toBe(1)
    expect(child.state).toBe('waiting')
    expect(crashes).toEqual([expect.objectContaining({ name: 'worker', pid: first, signal: 'SIGKILL', code: null, restarts: 1, delayMs: 50 })])
    expect(crashes[0]!.line).toMatch(/^supervisor: worker exited unexpectedly \(signal SIGKILL\) after [\d.]+ m?s up; restart 1 in 50 ms$/)
    expect(lines).toContain(`worker: ${crashes[0]!.line}`)
    const second = await eventually(async () => child.pid, 'the restarted worker', 10_000)
    expect(second).not.toBe(first)
    expect(alive(first)).toBe(false)
    expect(child.state).toBe('running')
  })

  it('restarts a child that exits by itself, with a code, on an exponential backoff capped at maxMs', async () => {
    // Prepare: exits with code 3 as soon as it runs; the clock never moves, so no run counts as stable
    const { supervisor: s, crashes } = supervise({ backoff: { initialMs: 5, factor: 2, maxMs: 40, stableMs: 1000 }, now: () => 0 })
    const child = s.add({ name: 'flaky', command: process.execPath, args: ['-e', 'process.exit(3)'] })

    // Act: no ready check, so start() returns with the child running
    await child.start()
    await eventually(async () => crashes.length >= 6, 'six crashes', 20_000)
    await child.stop()

    // Assess
    expect(crashes.slice(0, 6).map(c => [c.code, c.signal, c.restarts, c.delayMs])).toEqual([
      [3, null, 1, 5], [3, null, 2, 10], [3, null, 3, 20], [3, null, 4, 40], [3, null, 5, 40], [3, null, 6, 40],
    ])
    expect(crashes[0]!.line).toBe('supervisor: flaky exited unexpectedly (code 3) after 0 ms up; restart 1 in 5 ms')
    expect(child.state).toBe('stopped')
  })

  it('starts the backoff over after a run that lasted stableMs', async () => {
    // Prepare: a clock the test moves
    let clock = 0
    const { supervisor: s, crashes } = supervise({ backoff: { initialMs: 5, factor: 2, maxMs: 1000, stableMs: 10_000 }, now: () => clock })
    const child = s.add(node('steady'))
    await child.start()
    const nextRun = async (previous: number) => eventually(async () => (child.pid !== undefined && child.pid !== previous ? child.pid : undefined), 'the next run', 10_000)

    // Act: two quick crashes, then one after a long (stable) run
    let pid = child.pid!
    await child.kill('SIGKILL')
    pid = await nextRun(pid)
    await child.kill('SIGKILL')
    pid = await nextRun(pid)
    clock += 10_000
    await child.kill('SIGKILL')
    pid = await nextRun(pid)

    // Assess
    expect(crashes.map(c => [c.upMs, c.delayMs])).toEqual([[0, 5], [0, 10], [10_000, 5]])
    expect(child.restarts).toBe(3)
  })

  it('never restarts what it stops: stop() with its stop signal, SIGKILL after the grace period, the whole process group', async () => {
    // Prepare: ignores SIGTERM, and has a grandchild in its process group
    const { supervisor: s, crashes, lines } = supervise({ stopTimeoutMs: 300 })
    const child = s.add(node('stubborn', `process.on('SIGTERM', () => {}); const g = require('child_process').spawn('sleep', ['600']); console.log('grandchild ' + g.pid)`, { ready: printedReady(s, 'stubborn') }))
    await child.start()
    const pid = child.pid!
    const grandchild = Number(child.tail().find(l => l.startsWith('grandchild '))!.split(' ')[1])
    expect(alive(grandchild)).toBe(true)

    // Act
    await child.stop()

    // Assess: stopped for good the moment stop() resolves; nothing left in its group
    expect(child.state).toBe('stopped')
    expect(child.restarts).toBe(0)
    expect(crashes).toEqual([])
    expect(lines).toContain('stubborn: exited (SIGKILL)')
    expect(alive(pid)).toBe(false)
    await eventually(async () => !alive(grandchild), 'the grandchild gone', 5000)

    // And it starts again on request, without counting a restart
    await child.start()
    expect(child.running).toBe(true)
    expect(child.restarts).toBe(0)
  })

  it('kills what a crashed child left in its process group before it restarts it', async () => {
    const { supervisor: s } = supervise({ backoff: { initialMs: 60_000 } })
    const child = s.add(node('parent', `const g = require('child_process').spawn('sleep', ['600']); console.log('grandchild ' + g.pid)`, { ready: printedReady(s, 'parent') }))
    await child.start()
    const grandchild = Number(child.tail().find(l => l.startsWith('grandchild '))!.split(' ')[1])

    await child.kill('SIGKILL')

    await eventually(async () => !alive(grandchild), 'the orphaned grandchild gone', 5000)
    expect(child.state).toBe('waiting')
  })

  it('a crash stopped while waiting for its restart stays stopped; start() restarts a waiting child at once', async () => {
    // Prepare: a delay long enough that only start() can bring it back within the test
    const { supervisor: s } = supervise({ backoff: { initialMs: 60_000 } })
    const child = s.add(node('patient', '', { ready: printedReady(s, 'patient') }))
    await child.start()

    // Act 1: start() while waiting
    await child.kill('SIGKILL')
    expect(child.state).toBe('waiting')
    await child.start()
    expect([child.state, child.running, child.restarts]).toEqual(['running', true, 1])

    // Act 2: stop() while waiting
    await child.kill('SIGKILL')
    await child.stop()
    expect([child.state, child.running, child.restarts]).toEqual(['stopped', false, 2])
  })

  it('does not restart a child that dies while starting: start() rejects with the reason', async () => {
    const { supervisor: s, crashes } = supervise()
    const child = s.add({ name: 'broken', command: process.execPath, args: ['-e', 'console.error("bad setting"); process.exit(2)'], ready: printedReady(s, 'broken') })

    await expect(child.start()).rejects.toThrow('exited (code 2)')

    expect(child.state).toBe('stopped')
    expect(crashes).toEqual([])
    // (its stderr may arrive just after the exit is seen)
    await eventually(async () => child.tail().includes('bad setting'), 'its last words', 5000)
    expect(child.tail()).toContain('exited (code 2)')
  })

  it('close() stops children group by group, restarts nothing after, and refuses new starts', async () => {
    const { supervisor: s, crashes, lines } = supervise()
    const names = ['front', 'a', 'b', 'back']
    for (const name of names) {
      s.add(node(name, `process.on('SIGTERM', () => { console.log('bye'); process.exit(0) })`, { ready: printedReady(s, name) }))
    }
    await Promise.all(names.map(n => s.get(n).start()))

    await s.close([['front'], ['a', 'b']])

    expect(s.list().map(c => c.state)).toEqual(['stopped', 'stopped', 'stopped', 'stopped'])
    const exits = lines.filter(l => l.endsWith(': exited (code 0)')).map(l => l.split(':')[0])
    expect(exits[0]).toBe('front')
    expect(exits.slice(1, 3).sort()).toEqual(['a', 'b'])
    expect(exits[3]).toBe('back')
    expect(crashes).toEqual([])
    await expect(s.get('a').start()).rejects.toThrow('closed')
  })
})
