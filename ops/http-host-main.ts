/**
 * One warm HTTP host process: `node --import tsx ops/http-host-main.ts`.
 *
 *   PORT                 listen port (default: config's PORT, 8080)
 *   HOST                 listen address (default 127.0.0.1)
 *   KVARC_HOST_NAME      this host's label in /health and /metrics
 *   KVARC_SERVE_STATIC=1 also serve public/ (when no nginx stands in front)
 *   KVARC_SHUTDOWN_TIMEOUT_MS  how long SIGTERM waits for in-flight requests (default 20000)
 *
 * Prints one line once listening; SIGTERM / SIGINT drain in-flight requests and
 * exit 0. A missing build or a bad setting exits 1 with the reason.
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { loadConfig } from '../src/shared/config.js'
import { getLogger } from '../src/shared/log.js'
import { startHttpHost } from '../runtime/http/gateway.js'

export { startHttpHost, type HttpHost, type HttpHostOptions, type HostFunction } from '../runtime/http/gateway.js'

/** Reads this entry point's own settings; PORT and the services come from the shared config. */
function hostSettings(env: NodeJS.ProcessEnv) {
  const timeout = env.KVARC_SHUTDOWN_TIMEOUT_MS
  const shutdownTimeoutMs = timeout === undefined || timeout === '' ? 20_000 : Number(timeout)
  if (!Number.isInteger(shutdownTimeoutMs) || shutdownTimeoutMs < 0) {
    throw new Error(`KVARC_SHUTDOWN_TIMEOUT_MS must be a whole number of milliseconds, got ${JSON.stringify(timeout)}`)
  }
  return {
    host: env.HOST || '127.0.0.1',
    hostName: env.KVARC_HOST_NAME || undefined,
    serveStatic: env.KVARC_SERVE_STATIC === '1' || env.KVARC_SERVE_STATIC === 'true',
    shutdownTimeoutMs,
  }
}

export async function main(): Promise<void> {
  let config
  let settings
  try {
    config = loadConfig(process.env)
    settings = hostSettings(process.env)
  } catch (error) {
    console.error(`kvarc http host: ${(error as Error).message}`)
    process.exit(1)
  }
  const logger = getLogger(config.logLevel)

  // A function's stray rejected promise must not take down every other request in this process.
  process.on('unhandledRejection', reason => logger.error({ err: reason }, 'unhandled promise rejection in a function'))

  let host
  try {
    host = await startHttpHost({ config, port: config.port, ...settings, logger })
  } catch (error) {
    const message = (error as Error).message
    console.error(`kvarc http host failed to start: ${message}`)
    if (/bundle .* is missing/.test(message)) console.error('  build the functions first: npm run build')
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') console.error(`  port ${config.port} is taken: set PORT to a free one`)
    process.exit(1)
  }
  console.log(`kvarc http host ${host.hostName} listening on ${host.url}${settings.serveStatic ? ' (serving public/)' : ''}`)

  let draining = false
  const stop = (signal: NodeJS.Signals) => {
    if (draining) {
      // A second Ctrl-C means "now"; a repeated SIGTERM (a supervisor, a process group) lets the drain finish.
      if (signal !== 'SIGINT') return
      console.error(`kvarc http host ${host.hostName}: SIGINT again, exiting without draining`)
      process.exit(1)
    }
    draining = true
    host.close().then(
      () => process.exit(0),
      (error: unknown) => { logger.error({ err: error }, 'shutdown failed'); process.exit(1) },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

const entry = process.argv[1]
if (entry && import.meta.url === pathToFileURL(resolve(entry)).href) {
  void main()
}
