/**
 * CLI entry of the consumer host: `node build/ops/consumer-host-main.mjs` (its bundle).
 *
 * Environment (besides the service URLs and queue names of src/shared/config.ts):
 *   KVARC_CONSUMER_CONCURRENCY  batches in flight per consumer (default 4)
 *   KVARC_CONSUMER_PREFETCH     messages outstanding per consumer (default batch × (concurrency + 1))
 *   KVARC_CONSUMER_BATCH        overrides app.arc's batch size (tuning only)
 *   KVARC_CONSUMERS             comma-separated function names to run (default all)
 *   KVARC_METRICS_PORT          serve /health, /ready, /metrics there (0 = any free port; unset = none)
 *   KVARC_HOST_NAME             label in metrics and logs
 *   KVARC_SCHEDULED             comma-separated @scheduled functions to run on their schedules
 *                               (default all, e.g. purge-tombstones hourly; `none` = none)
 * SIGTERM / SIGINT: finish the batches and scheduled runs in flight, acknowledge the batches, close, exit 0.
 */
import { loadConfig } from '../src/shared/config.js'
import { getLogger } from '../src/shared/log.js'
import { BackingServiceError, prepareBackingServices } from './backing-services.js'
import { startConsumerHost } from '../runtime/rmq/consumer-host.js'
import { queueBindings } from './queues.js'
import { optionalIntFromEnv } from './env.js'
import { countConsumerWrites, createKvarcMetrics } from './metrics.js'

const optionalInt = (name: string, min: number, max: number) => optionalIntFromEnv(name, min, max, 'kvarc consumer host')

async function main(): Promise<void> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    console.error(`kvarc consumer host: ${(error as Error).message}`)
    process.exit(2)
  }
  const name = process.env.KVARC_HOST_NAME || 'consumer'
  // 4 batches in flight keep PostgreSQL, Redis and RabbitMQ busy while the host decodes the next:
  // measured draining 200,000 writes here, 2 gave 41-45k writes/s, 4 gave 47-51k, 6 was slower.
  const concurrency = optionalInt('KVARC_CONSUMER_CONCURRENCY', 1, 64) ?? 4
  const prefetch = optionalInt('KVARC_CONSUMER_PREFETCH', 1, 65535)
  const batchSize = optionalInt('KVARC_CONSUMER_BATCH', 1, 10000)
  const metricsPort = optionalInt('KVARC_METRICS_PORT', 0, 65535)
  const names = (value: string | undefined) => value ? value.split(',').map(s => s.trim()).filter(Boolean) : undefined
  const only = names(process.env.KVARC_CONSUMERS)
  const scheduled = process.env.KVARC_SCHEDULED?.trim() === 'none' ? [] : names(process.env.KVARC_SCHEDULED)
  const log = getLogger(config.logLevel)
  if (process.env.KVARC_PURGE_INTERVAL_MS !== undefined) {
    // Replaced, not silently ignored: whoever set it expects it to do something.
    console.warn(`kvarc consumer host ${name}: KVARC_PURGE_INTERVAL_MS is no longer read; the purge is @scheduled purge-tombstones in app.arc (KVARC_SCHEDULED=none runs no schedule here)`)
  }

  try {
    await prepareBackingServices(config)
  } catch (error) {
    console.error(`kvarc consumer host ${name}: ${(error as Error).message}`)
    process.exit(error instanceof BackingServiceError ? 3 : 1)
  }

  const metrics = createKvarcMetrics({ host: name })
  const host = await startConsumerHost({ cwd: process.cwd(), ...queueBindings(config), concurrency, prefetch, batchSize, only, scheduled, metricsPort, name, metrics, observeBatch: countConsumerWrites(metrics), logger: log })
  const queues = host.consumers.map(c => `${c.queue} (${c.name}, batch ${c.batch}, window ${c.windowMs} ms)`).join(', ')
  const schedules = host.scheduled.map(s => `${s.name} ${s.schedule}`).join(', ')
  console.log(`kvarc consumer host ${name} consuming ${queues}, concurrency ${concurrency}${schedules ? `; running ${schedules}` : ''}${host.url ? `; metrics on ${host.url}/metrics` : ''}`)

  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now": the unacknowledged messages return to the queue.
      process.exit(130)
    }
    stopping = true
    log.info({ signal }, 'finishing batches in flight, then closing')
    host.close().then(() => process.exit(0), error => {
      console.error(`kvarc consumer host ${name}: close failed: ${(error as Error).message}`)
      process.exit(1)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch(error => {
  console.error(`kvarc consumer host: ${(error as Error).stack ?? error}`)
  process.exit(1)
})
