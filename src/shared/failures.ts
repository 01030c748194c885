/**
 * Tells a PostgreSQL failure that a retry can fix (a service is away) from one
 * it cannot (the write itself is refused). The SQLSTATE class decides where it
 * can; node-postgres puts it in `code`. Errors without a SQLSTATE are the
 * driver's or the network's (ECONNREFUSED, "Connection terminated", timeouts).
 */

export type FailureClass = 'transient' | 'permanent' | 'unknown'

/**
 * Classes a retry can fix: 08 connection exception, 40 transaction rollback
 * (serialization failure, deadlock), 53 insufficient resources, 55 object not
 * in prerequisite state (lock not available), 57 operator intervention
 * (shutdown, cancel, statement timeout), 58 system error (I/O).
 */
const TRANSIENT_CLASSES = new Set(['08', '40', '53', '55', '57', '58'])
/** Classes no retry can fix: 22 data exception, 23 integrity constraint violation, 54 program limit exceeded. */
const PERMANENT_CLASSES = new Set(['22', '23', '54'])

const SQLSTATE = /^[0-9A-Z]{5}$/

/**
 * The SQLSTATE of an error PostgreSQL sent, or undefined for any other error.
 * Only the server's errors carry a `severity`; a socket's `code` (EPIPE) is not
 * a SQLSTATE even when it has five letters.
 */
export function sqlState(error: unknown): string | undefined {
  const { code, severity } = (error ?? {}) as { code?: unknown, severity?: unknown }
  return typeof code === 'string' && typeof severity === 'string' && SQLSTATE.test(code) ? code : undefined
}

/**
 * `unknown` (say a trigger's RAISE, P0001, or an internal error, XX000) is
 * neither: the caller decides by trying again while PostgreSQL answers — an
 * error that repeats while every service answers is permanent.
 */
export function classifyFailure(error: unknown): FailureClass {
  const state = sqlState(error)
  if (state === undefined) return 'transient'
  const cls = state.slice(0, 2)
  if (TRANSIENT_CLASSES.has(cls)) return 'transient'
  if (PERMANENT_CLASSES.has(cls)) return 'permanent'
  return 'unknown'
}

/** The reason a dead letter carries: the SQLSTATE and PostgreSQL's message. */
export function failureReason(error: unknown): string {
  const state = sqlState(error)
  const message = error instanceof Error ? error.message : String(error)
  return state ? `PostgreSQL refused the write (SQLSTATE ${state}): ${message}` : message
}
