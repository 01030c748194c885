/**
 * The scheduler on a fake clock (vitest's fake timers drive both Date.now and
 * setTimeout), so no test waits for, or depends on, the wall clock's speed.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { parseSchedule, ScheduleExpressionError, startScheduler, type ScheduledEvent, type Scheduler } from './scheduler.js'

const T0 = Date.parse('2025-06-02T11:30:00Z') // a Monday
const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString())

/** The next `count` occurrences of an expression after `from`, as ISO strings. */
function occurrences(expression: string, from: number, count: number): (string | undefined)[] {
  const schedule = parseSchedule(expression, from)
  const out: (string | undefined)[] = []
  let at: number | undefined = from
  for (let i = 0; i < count && at !== undefined; i++) out.push(iso(at = schedule.next(at)))
  return out
}

describe('schedule expressions', () => {
  it('rate: every N units from the start, singular for 1 and plural above, as EventBridge takes them', () => {
    expect(occurrences('rate(1 hour)', T0, 3)).toEqual(['2025-06-02T12:30:00.000Z', '2025-06-02T13:30:00.000Z', '2025-06-02T14:30:00.000Z'])
    expect(occurrences('rate(5 minutes)', T0, 2)).toEqual(['2025-06-02T11:35:00.000Z', '2025-06-02T11:40:00.000Z'])
    expect(occurrences('rate(2 days)', T0, 1)).toEqual(['2025-06-04T11:30:00.000Z'])
    expect(occurrences('rate(1 minute)', T0, 1)).toEqual(['2025-06-02T11:31:00.000Z'])
    // After a gap, the next one still falls on the rate's beat.
    expect(iso(parseSchedule('rate(1 hour)', T0).next(T0 + 5 * HOUR + 7))).toBe('2025-06-02T17:30:00.000Z')
    for (const bad of ['rate(1 hours)', 'rate(2 hour)', 'rate(0 minutes)', 'rate(-1 minutes)', 'rate(1.5 hours)', 'rate(1 second)', 'rate(1 week)', 'rate()', 'every hour', 'rate(1  hour)']) {
      expect(() => parseSchedule(bad, T0), bad).toThrow(ScheduleExpressionError)
    }
  })

  it("cron: AWS's six fields in UTC, the examples of the EventBridge docs", () => {
    expect(occurrences('cron(0 10 * * ? *)', T0, 2)).toEqual(['2025-06-03T10:00:00.000Z', '2025-06-04T10:00:00.000Z'])
    expect(occurrences('cron(15 12 * * ? *)', T0, 1)).toEqual(['2025-06-02T12:15:00.000Z'])
    // Weekdays at 18:00: Friday 6th, then Monday 9th.
    expect(occurrences('cron(0 18 ? * MON-FRI *)', Date.parse('2025-06-06T12:00:00Z'), 2)).toEqual(['2025-06-06T18:00:00.000Z', '2025-06-09T18:00:00.000Z'])
    expect(occurrences('cron(0 8 1 * ? *)', T0, 2)).toEqual(['2025-07-01T08:00:00.000Z', '2025-08-01T08:00:00.000Z'])
    expect(occurrences('cron(0/15 * * * ? *)', T0, 3)).toEqual(['2025-06-02T11:45:00.000Z', '2025-06-02T12:00:00.000Z', '2025-06-02T12:15:00.000Z'])
    expect(occurrences('cron(0/5 8-17 ? * MON-FRI *)', Date.parse('2025-06-06T17:52:00Z'), 2)).toEqual(['2025-06-06T17:55:00.000Z', '2025-06-09T08:00:00.000Z'])
  })

  it('cron: days of the week numbered 1-7 from Sunday, with L and #', () => {
    expect(occurrences('cron(0 0 ? * 1 *)', T0, 1)).toEqual(['2025-06-08T00:00:00.000Z']) // Sunday
    expect(occurrences('cron(0 0 ? * 2-6 *)', Date.parse('2025-06-06T12:00:00Z'), 2)).toEqual(['2025-06-09T00:00:00.000Z', '2025-06-10T00:00:00.000Z'])
    expect(occurrences('cron(0 0 ? * 7 *)', T0, 1)).toEqual(['2025-06-07T00:00:00.000Z']) // Saturday
    // */2 is SUN, TUE, THU, SAT; 2/2 is MON, WED, FRI and never Sunday.
    expect(occurrences('cron(0 0 ? * */2 *)', T0, 4)).toEqual(['2025-06-03T00:00:00.000Z', '2025-06-05T00:00:00.000Z', '2025-06-07T00:00:00.000Z', '2025-06-08T00:00:00.000Z'])
    expect(occurrences('cron(0 0 ? * 2/2 *)', T0, 4)).toEqual(['2025-06-04T00:00:00.000Z', '2025-06-06T00:00:00.000Z', '2025-06-09T00:00:00.000Z', '2025-06-11T00:00:00.000Z'])
    expect(occurrences('cron(0 9 ? * 2#1 *)', T0, 2)).toEqual(['2025-07-07T09:00:00.000Z', '2025-08-04T09:00:00.000Z']) // first Monday
    expect(occurrences('cron(0 12 ? * 6L *)', T0, 1)).toEqual(['2025-06-27T12:00:00.000Z']) // last Friday
    expect(occurrences('cron(0 0 L * ? *)', T0, 1)).toEqual(['2025-06-30T00:00:00.000Z']) // last day of the month
  })

  it('cron: the year field, which ends a schedule when its years are over', () => {
    expect(occurrences('cron(0 0 1 1 ? 2030)', T0, 2)).toEqual(['2030-01-01T00:00:00.000Z', undefined])
    expect(occurrences('cron(30 6 1 JAN ? 2026-2040/5)', T0, 3)).toEqual(['2026-01-01T06:30:00.000Z', '2031-01-01T06:30:00.000Z', '2036-01-01T06:30:00.000Z'])
    expect(occurrences('cron(0 0 ? * MON 2025,2027)', Date.parse('2025-12-30T00:00:00Z'), 1)).toEqual(['2027-01-04T00:00:00.000Z'])
    expect(occurrences('cron(0 0 1 1 ? 2020)', T0, 1)).toEqual([undefined])
  })

  it('cron: refuses what EventBridge refuses, and W, which is not supported here', () => {
    for (const bad of [
      'cron(0 10 * * *)', // five fields
      'cron(0 10 * * * *)', // neither day field is ?
      'cron(0 10 ? * ? *)', // both are
      'cron(0 10 15W * ? *)',
      'cron(0 10 * * ? 1969)',
      'cron(0 10 * * ? *-2030)',
      'cron(0 10 ? * 8 *)',
      'cron(0 10 ? * 0 *)',
      'cron(61 10 * * ? *)',
      'cron(0 10 31 2 ? *)', // never
      'cron(0 10 * FOO ? *)',
    ]) {
      expect(() => parseSchedule(bad, T0), bad).toThrow(ScheduleExpressionError)
    }
  })
})

describe('scheduler', () => {
  let scheduler: Scheduler | undefined

  beforeEach(() => {
    vi.useFakeTimers({ now: T0 })
  })
  afterEach(async () => {
    // A test may end with an invocation still waiting on the fake clock: let it finish.
    const closing = scheduler?.close()
    await vi.advanceTimersByTimeAsync(DAY)
    await closing
    scheduler = undefined
    vi.useRealTimers()
  })

  it('invokes each function on its schedule with the EventBridge Scheduled Event', async () => {
    // Prepare
    const events: ScheduledEvent[] = []
    scheduler = startScheduler({
      functions: [{ name: 'purge-tombstones', schedule: 'rate(1 hour)', invoke: async event => { events.push(event) } }],
      region: 'eu-west-1',
      account: '123456789012',
      ruleName: name => `kvarc-${name}`,
    })
    expect(scheduler.nextRun('purge-tombstones')).toBe(T0 + HOUR)

    // Act / Assess: nothing until the hour has passed, then one invocation per hour.
    await vi.advanceTimersByTimeAsync(HOUR - 1)
    expect(events).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(events).toEqual([{
      version: '0',
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: '123456789012',
      time: '2025-06-02T12:30:00Z',
      region: 'eu-west-1',
      resources: ['arn:aws:events:eu-west-1:123456789012:rule/kvarc-purge-tombstones'],
      detail: {},
    }])
    await vi.advanceTimersByTimeAsync(2 * HOUR)
    expect(events.map(e => e.time)).toEqual(['2025-06-02T12:30:00Z', '2025-06-02T13:30:00Z', '2025-06-02T14:30:00Z'])
    expect(new Set(events.map(e => e.id)).size).toBe(3)
  })

  it('runs several functions each on its own expression, cron ones at their UTC times', async () => {
    const calls: string[] = []
    const record = (name: string) => async (event: ScheduledEvent) => { calls.push(`${name} ${event.time}`) }
    scheduler = startScheduler({
      functions: [
        { name: 'noon', schedule: 'cron(0 12 * * ? *)', invoke: record('noon') },
        { name: 'quarter', schedule: 'rate(15 minutes)', invoke: record('quarter') },
      ],
    })
    await vi.advanceTimersByTimeAsync(HOUR)
    expect(calls).toEqual([
      'quarter 2025-06-02T11:45:00Z',
      'noon 2025-06-02T12:00:00Z',
      'quarter 2025-06-02T12:00:00Z',
      'quarter 2025-06-02T12:15:00Z',
      'quarter 2025-06-02T12:30:00Z',
    ])
    expect(scheduler.nextRun('noon')).toBe(Date.parse('2025-06-03T12:00:00Z'))
  })

  it('waits for an occurrence beyond the longest timer (24.8 days) without firing early', async () => {
    const times: string[] = []
    scheduler = startScheduler({ functions: [{ name: 'new-year', schedule: 'cron(0 0 1 1 ? *)', invoke: async e => { times.push(e.time) } }] })
    await vi.advanceTimersByTimeAsync(Date.parse('2026-01-01T00:00:00Z') - T0 - 1)
    expect(times).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(times).toEqual(['2026-01-01T00:00:00Z'])
  })

  it('shifts each function by a jitter drawn once, and keeps the occurrence as the event time', async () => {
    const fired: { at: number, time: string }[] = []
    scheduler = startScheduler({
      functions: [{ name: 'purge', schedule: 'rate(1 hour)', invoke: async e => { fired.push({ at: Date.now(), time: e.time }) } }],
      jitterMs: 60_000,
      random: () => 0.5,
    })
    expect(scheduler.nextRun('purge')).toBe(T0 + HOUR + 30_000)
    await vi.advanceTimersByTimeAsync(HOUR + 29_999)
    expect(fired).toEqual([])
    await vi.advanceTimersByTimeAsync(HOUR + 1)
    expect(fired).toEqual([
      { at: T0 + HOUR + 30_000, time: '2025-06-02T12:30:00Z' },
      { at: T0 + 2 * HOUR + 30_000, time: '2025-06-02T13:30:00Z' },
    ])
  })

  it('never overlaps a function with itself: occurrences passed while it runs are skipped', async () => {
    // Prepare: every minute, and the first invocation takes 150 s.
    const started: number[] = []
    let running = 0
    let most = 0
    scheduler = startScheduler({
      functions: [{
        name: 'slow',
        schedule: 'rate(1 minute)',
        invoke: async () => {
          started.push(Date.now() - T0)
          most = Math.max(most, ++running)
          await new Promise(resolve => setTimeout(resolve, started.length === 1 ? 150 * SECOND : SECOND))
          running--
        },
      }],
    })
    // Act
    await vi.advanceTimersByTimeAsync(5 * MINUTE)
    // Assess: 1:00 runs until 3:30; 2:00 and 3:00 are skipped; 4:00 and 5:00 run.
    expect(started).toEqual([MINUTE, 4 * MINUTE, 5 * MINUTE])
    expect(most).toBe(1)
  })

  it('reports results and failures, and a failure does not stop the schedule', async () => {
    const results: unknown[] = []
    const errors: { error: unknown, name: string, time?: string }[] = []
    let n = 0
    scheduler = startScheduler({
      functions: [{ name: 'flaky', schedule: 'rate(1 minute)', invoke: async () => { if (++n === 1) throw new Error('database away'); return { purged: n } } }],
      onResult: (name, result) => results.push({ name, result }),
      onError: (error, name, event) => errors.push({ error, name, time: event?.time }),
    })
    await vi.advanceTimersByTimeAsync(2 * MINUTE)
    expect(errors).toEqual([{ error: new Error('database away'), name: 'flaky', time: '2025-06-02T11:31:00Z' }])
    expect(results).toEqual([{ name: 'flaky', result: { purged: 2 } }])
  })

  it('close() is idempotent, waits for the running invocation, and nothing runs after it', async () => {
    // Prepare: an invocation that takes 10 s is running.
    let finished = 0
    let calls = 0
    scheduler = startScheduler({
      functions: [{ name: 'job', schedule: 'rate(1 minute)', invoke: async () => { calls++; await new Promise(resolve => setTimeout(resolve, 10 * SECOND)); finished++ } }],
    })
    await vi.advanceTimersByTimeAsync(MINUTE)
    expect(calls).toBe(1)

    // Act
    const closing = scheduler.close()
    let closed = false
    void closing.then(() => { closed = true })
    await vi.advanceTimersByTimeAsync(5 * SECOND)

    // Assess: still waiting for the invocation, then done; the same promise on every call.
    expect(closed).toBe(false)
    expect(scheduler.close()).toBe(closing)
    await vi.advanceTimersByTimeAsync(5 * SECOND)
    expect(closed).toBe(true)
    expect(finished).toBe(1)
    await vi.advanceTimersByTimeAsync(10 * MINUTE)
    expect(calls).toBe(1)
    await expect(scheduler.runNow('job')).rejects.toThrow(/closed/)
  })

  it('runs a function on demand through the same path, with a Scheduled Event of now', async () => {
    const events: ScheduledEvent[] = []
    const reported: unknown[] = []
    scheduler = startScheduler({
      functions: [{ name: 'purge', schedule: 'rate(1 hour)', invoke: async event => { events.push(event); return { purged: 3 } } }],
      onResult: (_name, result) => reported.push(result),
    })
    vi.setSystemTime(T0 + 1234)
    expect(await scheduler.runNow('purge')).toEqual({ purged: 3 })
    expect(events).toMatchObject([{ 'detail-type': 'Scheduled Event', time: '2025-06-02T11:30:01Z', resources: ['arn:aws:events:us-east-1:000000000000:rule/purge'] }])
    expect(reported).toEqual([{ purged: 3 }])
    // The schedule is untouched.
    expect(scheduler.nextRun('purge')).toBe(T0 + HOUR)
    await expect(scheduler.runNow('nope')).rejects.toThrow(/no scheduled function nope/)
  })

  it('refuses an invalid expression or a duplicate name at start, naming the function', () => {
    const invoke = async () => undefined
    expect(() => startScheduler({ functions: [{ name: 'bad', schedule: 'rate(1 hours)', invoke }] })).toThrow(/scheduled function bad: rate\(1 hours\)/)
    expect(() => startScheduler({ functions: [{ name: 'a', schedule: 'rate(1 hour)', invoke }, { name: 'a', schedule: 'rate(2 hours)', invoke }] })).toThrow(/listed twice/)
  })
})

describe('scheduler timers', () => {
  it('never keep the process alive (unref)', async () => {
    // Real timers: Node lists only the timers that hold the process open.
    const held = () => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
    const before = held()
    const scheduler = startScheduler({ functions: [{ name: 'a', schedule: 'rate(1 minute)', invoke: async () => undefined }, { name: 'b', schedule: 'cron(0 0 1 1 ? *)', invoke: async () => undefined }] })
    try {
      expect(held()).toBe(before)
    } finally {
      await scheduler.close()
    }
  })
})
