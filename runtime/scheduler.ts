/**
 * The scheduler of `@scheduled` functions: what an EventBridge schedule rule
 * does on AWS, in-process. Each function runs on its EventBridge schedule
 * expression and is invoked with the "Scheduled Event" EventBridge sends a
 * rule's target, so a handler cannot tell which one invoked it.
 *
 * App-agnostic: the caller hands in the functions (name, expression, invoke)
 * and hears of results and failures through callbacks.
 *
 * Expressions, as EventBridge takes them:
 *   rate(N minute|minutes|hour|hours|day|days)  every N units; the first one N units after start
 *   cron(min hour day-of-month month day-of-week year)  UTC; one of the day fields is `?`
 * cron fields are matched by cron-parser (day-of-week renumbered from AWS's
 * 1-7 = SUN-SAT); the year field, which cron-parser lacks, is matched here.
 * Not supported: `W` (nearest weekday) in day-of-month.
 *
 * Where it differs from EventBridge, on purpose: one invocation of a function
 * at a time; an occurrence that comes while the previous invocation still runs
 * is skipped, not queued (EventBridge would invoke concurrently). Timers are
 * unref'd: a scheduler alone never keeps a process alive.
 */
import { CronExpressionParser } from 'cron-parser'
import { randomUUID } from 'node:crypto'

/** The event EventBridge sends a scheduled rule's target. */
export interface ScheduledEvent {
  version: '0'
  id: string
  'detail-type': 'Scheduled Event'
  source: 'aws.events'
  account: string
  /** The occurrence, to the second: 2025-06-02T12:00:00Z */
  time: string
  region: string
  /** The rule's ARN. */
  resources: string[]
  detail: Record<string, never>
}

export interface ScheduledTarget {
  name: string
  /** An EventBridge schedule expression: `rate(1 hour)`, `cron(0 12 * * ? *)`. */
  schedule: string
  invoke(event: ScheduledEvent): Promise<unknown>
}

export interface SchedulerOptions {
  functions: readonly ScheduledTarget[]
  /** Of the event and the rule ARN; default us-east-1 and 000000000000. */
  region?: string
  account?: string
  /** Rule name in the event's rule ARN; default the function's name. */
  ruleName?: (functionName: string) => string
  /**
   * Each function's occurrences come later by an offset drawn once, up to this
   * many ms (default 0), so hosts started together do not all fire at once.
   * The event's `time` stays the occurrence.
   */
  jitterMs?: number
  /** Source of the jitter (tests); default Math.random. */
  random?: () => number
  onResult?: (name: string, result: unknown, event: ScheduledEvent) => void
  onError?: (error: unknown, name: string, event?: ScheduledEvent) => void
}

export interface Scheduler {
  /** When a function is next invoked (ms since the epoch, jitter included); undefined when never again. */
  nextRun(name: string): number | undefined
  /**
   * Invokes a function now, outside its schedule, with a Scheduled Event whose
   * `time` is now; resolves with its result (rejects with its error, which is
   * also reported to onError). close() waits for it too.
   */
  runNow(name: string): Promise<unknown>
  /** Idempotent: no further invocations; resolves once the running ones have finished. */
  close(): Promise<void>
}

export class ScheduleExpressionError extends Error {
  override name = 'ScheduleExpressionError'
}

/** When a schedule fires: its first occurrence strictly after a moment. */
export interface Schedule {
  readonly expression: string
  /** ms since the epoch; undefined when it never fires again (a cron whose years are over). */
  next(afterMs: number): number | undefined
}

const MINUTE = 60_000
const RATE_UNITS: Record<string, number> = { minute: MINUTE, hour: 60 * MINUTE, day: 24 * 60 * MINUTE }
// EventBridge's cron years.
const FIRST_YEAR = 1970
const LAST_YEAR = 2199
// setTimeout holds at most 2^31 - 1 ms (24.8 days); a later occurrence is waited for in steps.
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Parses an EventBridge schedule expression. A rate counts from `startMs`
 * (EventBridge counts from the rule's creation).
 *
 * @example parseSchedule('rate(5 minutes)', Date.now()).next(Date.now()) // five minutes from now
 */
export function parseSchedule(expression: string, startMs: number): Schedule {
  const text = expression.trim()
  const rate = /^rate\((.*)\)$/s.exec(text)
  if (rate) return rateSchedule(text, rate[1] as string, startMs)
  const cron = /^cron\((.*)\)$/s.exec(text)
  if (cron) return cronSchedule(text, cron[1] as string, startMs)
  throw new ScheduleExpressionError(`${JSON.stringify(expression)} is neither rate(...) nor cron(...)`)
}

function rateSchedule(expression: string, body: string, startMs: number): Schedule {
  const match = /^(\d+) (minute|hour|day)(s?)$/.exec(body.trim())
  const value = Number(match?.[1])
  if (!match || !Number.isSafeInteger(value) || value < 1) {
    throw new ScheduleExpressionError(`${expression}: a rate is a whole number above 0 and minute(s), hour(s) or day(s)`)
  }
  // EventBridge refuses "1 hours" and "2 hour".
  if ((value === 1) !== (match[3] === '')) throw new ScheduleExpressionError(`${expression}: say ${value === 1 ? `1 ${match[2]}` : `${value} ${match[2]}s`}`)
  const period = value * (RATE_UNITS[match[2] as string] as number)
  return {
    expression,
    next: afterMs => startMs + Math.max(1, Math.floor((afterMs - startMs) / period) + 1) * period,
  }
}

/** AWS numbers days of the week 1-7 from Sunday; cron-parser 0-6 (7 is Sunday again). */
function dayOfWeekForCronParser(field: string, expression: string): string {
  const shift = (n: string) => {
    const day = Number(n)
    if (!Number.isInteger(day) || day < 1 || day > 7) throw new ScheduleExpressionError(`${expression}: day-of-week ${n} is not 1-7 (SUN-SAT)`)
    return String(day - 1)
  }
  return field.split(',').map(part => {
    if (part === '?' || part === '*') return '*'
    if (part === 'L') return '6' // alone, the last day of the week: Saturday
    let m = /^(\d+)(L|#\d+)$/.exec(part) // 6L: last Friday of the month; 2#1: its first Monday
    if (m) return shift(m[1] as string) + m[2]
    // Steps are written as explicit ranges within 0-6: cron-parser's */2 or 1/2 would count up to 7, its second Sunday.
    m = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part)
    if (m) {
      const [, from, to, step] = m as unknown as [string, string, string | undefined, string | undefined]
      if (from === '*') return step ? `0-6/${step}` : '*'
      if (step) return `${shift(from)}-${shift(to ?? '7')}/${step}`
      return to ? `${shift(from)}-${shift(to)}` : shift(from)
    }
    return part // names (MON-FRI, MON#1): the same in both
  }).join(',')
}

// The year field: *, 2030, 2030-2035, 2030,2032, */2 (every other year), 2030/5, 2030-2040/2.
function yearMatcher(field: string, expression: string): (year: number) => boolean {
  const parts = field.split(',').map(part => {
    const m = /^(\*|\d{4})(?:-(\d{4}))?(?:\/(\d+))?$/.exec(part)
    const from = m?.[1] === '*' ? FIRST_YEAR : Number(m?.[1])
    const to = m?.[2] ? Number(m[2]) : m?.[1] === '*' || m?.[3] ? LAST_YEAR : from
    const step = m?.[3] ? Number(m[3]) : 1
    if (!m || (m[1] === '*' && m[2]) || from < FIRST_YEAR || to > LAST_YEAR || from > to || step < 1) {
      throw new ScheduleExpressionError(`${expression}: year ${JSON.stringify(part)} is not a year ${FIRST_YEAR}-${LAST_YEAR}, a range, a list or a step`)
    }
    return (year: number) => year >= from && year <= to && (year - from) % step === 0
  })
  return year => parts.some(matches => matches(year))
}

function cronSchedule(expression: string, body: string, startMs: number): Schedule {
  const fields = body.trim().split(/\s+/)
  if (fields.length !== 6) throw new ScheduleExpressionError(`${expression}: a cron expression has six fields (minutes hours day-of-month month day-of-week year)`)
  const [minutes, hours, dayOfMonth, month, dayOfWeek, year] = fields as [string, string, string, string, string, string]
  // EventBridge: "If you specify a value or a * in one of the fields, you must use a ? in the other."
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) throw new ScheduleExpressionError(`${expression}: one of day-of-month and day-of-week must be ?, and only one`)
  if (/W/i.test(dayOfMonth)) throw new ScheduleExpressionError(`${expression}: W (nearest weekday) is not supported here`)
  const pattern = `0 ${minutes} ${hours} ${dayOfMonth === '?' ? '*' : dayOfMonth} ${month} ${dayOfWeek === '?' ? '*' : dayOfWeekForCronParser(dayOfWeek, expression)}`
  const inYear = year === '*' ? undefined : yearMatcher(year, expression)

  const after = (ms: number) => CronExpressionParser.parse(pattern, { currentDate: new Date(ms), tz: 'UTC' }).next().getTime()
  const schedule: Schedule = {
    expression,
    next(afterMs) {
      if (!inYear) return after(afterMs)
      let from = afterMs
      for (;;) {
        const at = after(from)
        const y = new Date(at).getUTCFullYear()
        if (inYear(y)) return at
        // Jump to the next year the field allows instead of walking a year minute by minute.
        let next = y + 1
        while (next <= LAST_YEAR && !inYear(next)) next++
        if (next > LAST_YEAR) return undefined
        from = Date.UTC(next, 0, 1) - 1
      }
    },
  }
  try {
    schedule.next(startMs)
  } catch (error) {
    throw new ScheduleExpressionError(`${expression}: ${(error as Error).message}`, { cause: error })
  }
  return schedule
}

/**
 * The "Scheduled Event" of one occurrence.
 *
 * @example scheduledEvent('arn:aws:events:us-east-1:000000000000:rule/purge', Date.parse('2025-06-02T12:00:00Z'), 'us-east-1', '000000000000')
 */
export function scheduledEvent(ruleArn: string, atMs: number, region: string, account: string): ScheduledEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account,
    time: new Date(Math.floor(atMs / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
    region,
    resources: [ruleArn],
    detail: {},
  }
}

/** One function on its schedule: a timer to the next occurrence, one invocation at a time. */
class ScheduledJob {
  private timer: NodeJS.Timeout | undefined
  /** The occurrence the timer waits for. */
  private due: number | undefined
  private running: Promise<unknown> | undefined
  private stopped = false

  constructor(
    private readonly target: ScheduledTarget,
    private readonly schedule: Schedule,
    private readonly offsetMs: number,
    private readonly invoke: (target: ScheduledTarget, atMs: number) => Promise<unknown>,
    private readonly onError: (error: unknown) => void,
  ) {}

  get nextRun(): number | undefined {
    return this.due === undefined ? undefined : this.due + this.offsetMs
  }

  /** Waits for the first occurrence after `afterMs`. */
  arm(afterMs: number): void {
    if (this.stopped) return
    try {
      this.due = this.schedule.next(afterMs)
    } catch (error) {
      this.due = undefined
      this.onError(error)
    }
    this.wait()
  }

  private wait(): void {
    if (this.stopped || this.due === undefined) return
    const delay = this.due + this.offsetMs - Date.now()
    // Re-checked when the timer fires: a far occurrence is waited for in steps, and a wall clock set back is waited out.
    this.timer = delay > MAX_TIMER_MS ? setTimeout(() => this.wait(), MAX_TIMER_MS) : setTimeout(() => this.fire(), Math.max(0, delay))
    this.timer.unref()
  }

  private fire(): void {
    const due = this.due as number
    if (Date.now() < due + this.offsetMs) return this.wait()
    this.running = this.invoke(this.target, due).finally(() => {
      this.running = undefined
      // Occurrences that passed while it ran are skipped: the next one still ahead.
      this.arm(Math.max(due, Date.now() - this.offsetMs))
    })
  }

  stop(): Promise<unknown> {
    this.stopped = true
    clearTimeout(this.timer)
    return this.running ?? Promise.resolve()
  }
}

/**
 * Starts every function on its schedule. Throws a ScheduleExpressionError
 * naming the function when an expression is invalid (nothing is started then).
 *
 * @example const scheduler = startScheduler({ functions: [{ name: 'purge', schedule: 'rate(1 hour)', invoke: handler }] })
 */
export function startScheduler(options: SchedulerOptions): Scheduler {
  const region = options.region ?? 'us-east-1'
  const account = options.account ?? '000000000000'
  const ruleArn = (name: string) => `arn:aws:events:${region}:${account}:rule/${options.ruleName?.(name) ?? name}`
  const random = options.random ?? Math.random
  const inFlight = new Set<Promise<unknown>>()
  let closing: Promise<void> | undefined

  /** The one invocation path of both timers and runNow: event, outcome reported, tracked for close(). */
  const invoke = (target: ScheduledTarget, atMs: number): Promise<unknown> => {
    const event = scheduledEvent(ruleArn(target.name), atMs, region, account)
    const call = Promise.resolve()
      .then(() => target.invoke(event))
      .then(result => {
        report(() => options.onResult?.(target.name, result, event))
        return result
      }, (error: unknown) => {
        report(() => options.onError?.(error, target.name, event))
        throw error
      })
    const settled = call.then(() => {}, () => {})
    inFlight.add(settled)
    void settled.finally(() => inFlight.delete(settled))
    return call
  }

  const start = Date.now()
  const names = new Set<string>()
  const jobs = new Map<string, ScheduledJob>()
  for (const target of options.functions) {
    if (names.has(target.name)) throw new Error(`scheduled function ${target.name} is listed twice`)
    names.add(target.name)
    let schedule: Schedule
    try {
      schedule = parseSchedule(target.schedule, start)
    } catch (error) {
      throw new ScheduleExpressionError(`scheduled function ${target.name}: ${(error as Error).message}`, { cause: error })
    }
    const offset = Math.floor(random() * (options.jitterMs ?? 0))
    jobs.set(target.name, new ScheduledJob(target, schedule, offset,
      // A timer's invocation reports its failure through onError; its promise must not reject unheard.
      (t, at) => invoke(t, at).catch(() => undefined),
      error => report(() => options.onError?.(error, target.name))))
  }
  for (const job of jobs.values()) job.arm(start)

  const targetOf = (name: string) => {
    const target = options.functions.find(f => f.name === name)
    if (!target) throw new Error(`no scheduled function ${name}`)
    return target
  }

  return {
    nextRun: name => jobs.get(targetOf(name).name)?.nextRun,
    async runNow(name) {
      if (closing) throw new Error(`scheduler is closed: ${name} not invoked`)
      return invoke(targetOf(name), Date.now())
    },
    close() {
      closing ??= (async () => {
        await Promise.all([...jobs.values()].map(job => job.stop()))
        await Promise.all(inFlight)
      })()
      return closing
    },
  }
}

/** A listener that throws must not break the schedule. */
function report(listener: () => void): void {
  try {
    listener()
  } catch {
    // The caller's own callback failed; the scheduler has nowhere better to say so.
  }
}
