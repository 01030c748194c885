/**
 * Structured JSON logs (pino). The default level is `warn`, so nothing is logged
 * per request on the hot path; errors are always logged with their context.
 */
import pino, { type Logger } from 'pino'

let logger: Logger | undefined

/** The process's logger, created on first use at the given level. */
export function getLogger(level = 'warn'): Logger {
  logger ??= pino({ level, base: { service: 'kvarc' } })
  return logger
}
