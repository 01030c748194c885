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
  logger ??= pino({ level: level ?? configuredLevel(), base: { service: 'kvarc' } })
  return logger
}
