/**
 * Structured JSON logs (pino). The default level is `warn`, so nothing is logged
 * per request on the hot path; errors are always logged with their context.
 */
import pino, { type Logger } from 'pino'
import { getConfig } from './config.js'

let logger: Logger | undefined

/** The config's LOG_LEVEL; 'warn' when the config itself cannot be read (its error surfaces elsewhere). */
function configuredLevel(): string {
  try {
    return getConfig().logLevel
  } catch {
    return 'warn'
  }
}

/** The process's logger, created on first use at the given level (by default LOG_LEVEL from the config). */
export function getLogger(level?: string): Logger {
  logger ??= pino({
    level: level ?? configuredLevel(),
    base: { service: 'kvarc' },
    // Never a secret or a stored value in a log line: PostgreSQL's `detail` of a refused row
    // repeats the row's values, and a header dump would carry the bearer token.
    redact: { paths: ['err.detail', 'err.cause.detail', 'err.where', '*.authorization', '*.headers.authorization'], censor: '[redacted]' },
  })
  return logger
}

const lastLogged = new Map<string, { at: number, suppressed: number }>()

/**
 * Logs an error at most once per `everyMs` for the same `key`, then says how
 * many it held back. An outage turns every request into the same error; one
 * line per request would flood the log exactly when it matters, and cost the
 * hot path. The first occurrence is always logged, with its cause.
 */
export function errorThrottled(key: string, context: Record<string, unknown>, message: string, everyMs = 10_000, now = Date.now()): boolean {
  const seen = lastLogged.get(key)
  if (seen && now - seen.at < everyMs) {
    seen.suppressed++
    return false
  }
  getLogger().error({ ...context, suppressed: seen?.suppressed ?? 0 }, message)
  if (lastLogged.size >= 1000) lastLogged.clear() // distinct messages are few; never let the map grow unbounded
  lastLogged.set(key, { at: now, suppressed: 0 })
  return true
}
