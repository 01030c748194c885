/**
 * The one invocation path of the runtime: every event it delivers (an HTTP
 * request, a queue batch, a schedule) reaches its function through an
 * Invoker, which builds the Lambda context, enforces the function's timeout
 * (the deadline `getRemainingTimeInMillis` counts down to) and reports the
 * outcome: ok with the function's value, failed with its error, or timed out.
 *
 * A handler runs the way Lambda's Node runtime runs it: a returned promise or,
 * for a handler that declares `(event, context, callback)`, the callback
 * settles it; a synchronous throw is a failure. A function past its timeout
 * keeps running (nothing can stop it in-process), but whatever it answers
 * later is dropped.
 *
 * Hot path (one invocation per HTTP request): no closure is created per
 * invocation unless the handler takes a callback, the request id is made only
 * when the function reads it, and the pending invocations of one function
 * share one timer (Deadlines).
 */
import { randomUUID } from 'node:crypto'
import type { Handler } from './app.js'

/** What the runtime invokes: a loaded handler under its name and app.arc timeout. */
export interface InvocableFunction {
  name: string
  timeoutMs: number
  handler: Handler
}

/** How an invocation ended; `pending` until it has. */
export type Outcome = 'pending' | 'ok' | 'failed' | 'timeout'

export class InvocationTimeoutError extends Error {
  override name = 'InvocationTimeoutError'
}

/**
 * Per-invocation code avoids creating closures: under tsx, esbuild's transform
 * (keepNames) wraps every named closure in a defineProperty call each time it
 * is created, and closures are garbage besides; together with fewer promise
 * hops this took ~6 us of CPU off each HTTP request. Promise settlers are
 * captured by a module-level executor.
 */
let capturedResolve: ((value: never) => void) | undefined
let capturedReject: ((error: unknown) => void) | undefined
function captureSettlers(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  capturedResolve = resolve
  capturedReject = reject
}

/** A promise with its settlers, made without a closure. */
export function deferred<T>(): { promise: Promise<T>, resolve: (value: T) => void, reject: (error: unknown) => void } {
  const promise = new Promise<T>(captureSettlers as (resolve: (value: T) => void, reject: (error: unknown) => void) => void)
  return { promise, resolve: capturedResolve as (value: T) => void, reject: capturedReject! }
}

/**
 * The Lambda context a handler gets. Fields Lambda sets from its deployment
 * (ARN, memory) carry local stand-ins; nothing in the runtime reads them.
 */
export class LambdaContext {
  readonly functionVersion = '$LATEST'
  /** Lambda's default; in-process there is no event loop of the function's own to wait for. */
  callbackWaitsForEmptyEventLoop = true
  private requestId: string | undefined
  /** `deadline` is Date.now() past which the function has timed out. */
  constructor(readonly functionName: string, private readonly deadline: number) {}
  get invokedFunctionArn(): string {
    return `arn:aws:lambda:local:000000000000:function:${this.functionName}`
  }
  /** What app.arc's default would give; the runtime does not read app.arc's `memory`. */
  get memoryLimitInMB(): string {
    return '512'
  }
  get awsRequestId(): string {
    this.requestId ??= randomUUID()
    return this.requestId
  }
  getRemainingTimeInMillis(): number {
    return Math.max(0, this.deadline - Date.now())
  }
}

/**
 * One invocation of a function, settled once: by the function (its promise or
 * Lambda's callback) or by its timeout. Await `done`, then read `outcome` and
 * `value` or `error`.
 */
export class Invocation {
  outcome: Outcome = 'pending'
  value: unknown
  error: unknown
  readonly done: Promise<void>
  /** performance.now() past which the function has timed out. */
  readonly deadline: number
  /** Neighbours in its function's deadline list, while pending. */
  prev: Invocation | undefined
  next: Invocation | undefined
  private readonly resolve: (value: void) => void

  constructor(private readonly deadlines: Deadlines) {
    const { promise, resolve } = deferred<void>()
    this.done = promise
    this.resolve = resolve
    this.deadline = performance.now() + deadlines.timeoutMs
    deadlines.add(this)
  }

  succeed(value: unknown): void {
    if (this.outcome !== 'pending') return
    this.outcome = 'ok'
    this.value = value
    this.deadlines.remove(this)
    this.resolve()
  }

  fail(error: unknown): void {
    if (this.outcome !== 'pending') return
    this.outcome = 'failed'
    this.error = error
    this.deadlines.remove(this)
    this.resolve()
  }

  /** Called by the deadline list, which has already unlinked it. */
  expire(): void {
    if (this.outcome !== 'pending') return
    this.outcome = 'timeout'
    this.resolve()
  }
}

/**
 * The pending invocations of one function, oldest first. They share one
 * timeout, so deadlines come in call order and one timer, armed for the
 * oldest, serves them all: an invocation costs two pointer writes instead of a
 * node Timeout (allocated, inserted in a timer list, removed again).
 */
class Deadlines {
  private head: Invocation | undefined
  private tail: Invocation | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(readonly timeoutMs: number) {}

  add(invocation: Invocation): void {
    invocation.prev = this.tail
    if (this.tail) this.tail.next = invocation
    else this.head = invocation
    this.tail = invocation
    if (!this.timer) this.arm(this.timeoutMs)
  }

  remove(invocation: Invocation): void {
    const { prev, next } = invocation
    if (prev) prev.next = next
    else if (this.head === invocation) this.head = next
    else return // not linked
    if (next) next.prev = prev
    else this.tail = prev
    invocation.prev = invocation.next = undefined
  }

  /** Expires every invocation past its deadline, then waits for the next oldest. */
  expireDue(): void {
    this.timer = undefined
    const now = performance.now()
    // Timers may fire a fraction of a millisecond early by performance.now()'s clock.
    while (this.head && this.head.deadline <= now + 1) {
      const due = this.head
      this.remove(due)
      due.expire()
    }
    if (this.head) this.arm(this.head.deadline - now)
  }

  private arm(ms: number): void {
    this.timer = setTimeout(expireDue, Math.max(1, Math.ceil(ms)), this)
    // Pending work holds the process open anyway; an idle list must not.
    this.timer.unref()
  }
}

function expireDue(deadlines: Deadlines): void {
  deadlines.expireDue()
}

async function awaitReturned(invocation: Invocation, returned: PromiseLike<unknown>): Promise<void> {
  try {
    invocation.succeed(await returned)
  } catch (error) {
    invocation.fail(error)
  }
}

/**
 * A function ready to be invoked, any number of times at once: the runtime
 * makes one per function at start and reuses it for every event.
 *
 * @example
 * const add = new Invoker({ name: 'add-key', timeoutMs: 30_000, handler })
 * const result = await add.invoke(event)            // rejects with the error or an InvocationTimeoutError
 * const call = add.start(event); await call.done     // or read call.outcome: 'ok' | 'failed' | 'timeout'
 */
export class Invoker {
  readonly name: string
  readonly timeoutMs: number
  /** Declares (event, context, callback): Lambda's callback style. */
  readonly takesCallback: boolean
  private readonly handler: Handler
  private readonly deadlines: Deadlines

  constructor(fn: InvocableFunction) {
    this.name = fn.name
    this.timeoutMs = fn.timeoutMs
    this.handler = fn.handler
    this.takesCallback = fn.handler.length >= 3
    this.deadlines = new Deadlines(fn.timeoutMs)
  }

  /** Starts one invocation; it settles on its own (never rejects). */
  start(event: unknown): Invocation {
    const invocation = new Invocation(this.deadlines)
    const context = new LambdaContext(this.name, Date.now() + this.timeoutMs)
    try {
      const returned = this.takesCallback
        ? (this.handler as (e: unknown, c: unknown, cb: (error: unknown, value?: unknown) => void) => unknown)(event, context, (error, value) => {
            if (error) invocation.fail(error)
            else invocation.succeed(value)
          })
        : this.handler(event, context)
      if (returned !== null && typeof returned === 'object' && typeof (returned as PromiseLike<unknown>).then === 'function') {
        void awaitReturned(invocation, returned as PromiseLike<unknown>)
      } else if (!this.takesCallback) {
        invocation.succeed(returned)
      }
    } catch (error) {
      invocation.fail(error)
    }
    return invocation
  }

  /** The function's value; rejects with its error, or with an InvocationTimeoutError past its timeout. */
  async invoke(event: unknown): Promise<unknown> {
    const invocation = this.start(event)
    await invocation.done
    if (invocation.outcome === 'ok') return invocation.value
    if (invocation.outcome === 'failed') throw invocation.error
    throw new InvocationTimeoutError(`${this.name} did not finish within its ${this.timeoutMs} ms timeout`)
  }
}
