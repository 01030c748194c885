/**
 * One readiness probe: "does this process answer its readiness URL with 200?"
 * (an HTTP host's or the consumer host's GET /ready, nginx's /health). Used by
 * the stack when it starts a child (ops/stack.ts) and by the tests that
 * wait for a restarted host to come back.
 *
 * A 503 from /ready (a backing service away) is "not ready yet", like a refused
 * connection: the wait goes on until the deadline.
 *
 * @example
 *   await waitReady('http://127.0.0.1:41234/ready', { timeoutMs: 30_000, abandon: () => exited ? 'exited (code 1)' : undefined })
 */

export interface ReadyProbe {
  ready: boolean
  /** The HTTP status, when the URL answered. */
  status?: number
  /** Why it was not ready: a refused connection, a timeout, a status. */
  error?: string
}

/** One GET, bounded by `timeoutMs`; ready when it answers 200. Never throws. */
export async function probeReady(url: string, timeoutMs = 2000): Promise<ReadyProbe> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
    await response.arrayBuffer()
    return response.status === 200 ? { ready: true, status: 200 } : { ready: false, status: response.status, error: `answered ${response.status}` }
  } catch (error) {
    const e = error as Error & { cause?: { code?: string } }
    return { ready: false, error: e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message) }
  }
}

export interface WaitReadyOptions {
  /** Bound on the whole wait. */
  timeoutMs: number
  /** Bound on each probe. Default 2 s. */
  probeTimeoutMs?: number
  /** Asked before each probe: a reason to stop waiting (e.g. the process exited), or undefined to go on. */
  abandon?: () => string | undefined
}

export class NotReadyError extends Error {
  override name = 'NotReadyError'
  constructor(message: string, readonly why: 'abandoned' | 'timeout', readonly last?: ReadyProbe) {
    super(message)
  }
}

/**
 * Probes `url` until it answers 200: quickly at first (a warm host is ready in
 * tens of milliseconds), then every 250 ms. Throws a NotReadyError when
 * `abandon` gives a reason, or after `timeoutMs`.
 */
export async function waitReady(url: string, options: WaitReadyOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  let last: ReadyProbe | undefined
  for (let delay = 25; ; delay = Math.min(delay * 2, 250)) {
    const reason = options.abandon?.()
    if (reason) throw new NotReadyError(`${url}: ${reason}`, 'abandoned', last)
    last = await probeReady(url, options.probeTimeoutMs ?? 2000)
    if (last.ready) return
    if (Date.now() > deadline) throw new NotReadyError(`${url} was not ready within ${options.timeoutMs} ms (last: ${last.error})`, 'timeout', last)
    await new Promise(resolve => setTimeout(resolve, delay))
  }
}
