/**
 * kvarc's metrics: the runtime's, named `kvarc_*`, plus what only kvarc
 * knows: cache reads by source and publishes by queue (observed on the HTTP
 * functions' answers, ops/http-host-main.ts) and queue depths (read at scrape
 * time by ops/operator.ts). `npm run status` (ops/status.ts), bench and the
 * tests read these names.
 */
import { Counter, Gauge } from 'prom-client'
import { createMetrics } from '../runtime/metrics.js'

export const METRICS_PREFIX = 'kvarc_'

/** @example const metrics = createKvarcMetrics({ host: 'http-1' }) */
export function createKvarcMetrics(labels: Record<string, string> = {}) {
  const metrics = createMetrics({ prefix: METRICS_PREFIX, labels })
  const registers = [metrics.registry]
  return {
    ...metrics,
    cacheReads: new Counter({ name: `${METRICS_PREFIX}cache_reads_total`, help: 'GET /api answers (200 and 404) by source: redis (hit, including negative entries) or postgres (miss)', labelNames: ['source'], registers }),
    publishes: new Counter({ name: `${METRICS_PREFIX}publishes_total`, help: 'Writes published: confirmed (200) or failed (503)', labelNames: ['queue', 'outcome'], registers }),
    writes: new Counter({ name: `${METRICS_PREFIX}consumer_writes_total`, help: 'Writes seen by consumers: applied, skipped (older than stored), rejected (a condition failed), dead_lettered, cache_deferred (applied; cache repaired later)', labelNames: ['consumer', 'outcome'], registers }),
    queueDepth: new Gauge({ name: `${METRICS_PREFIX}queue_messages`, help: 'Messages ready in a queue (read at scrape time)', labelNames: ['queue'], registers }),
  }
}

export type KvarcMetrics = ReturnType<typeof createKvarcMetrics>

/** What a consumer function returned (src/shared/consumer.ts BatchResult), counted by outcome. */
export function countConsumerWrites(metrics: Pick<KvarcMetrics, 'writes'>) {
  return (consumer: string, result: unknown): void => {
    const r = (result ?? {}) as { applied?: number, skipped?: number, rejected?: number, deadLettered?: number, cacheDeferred?: number }
    if (r.applied) metrics.writes.inc({ consumer, outcome: 'applied' }, r.applied)
    if (r.skipped) metrics.writes.inc({ consumer, outcome: 'skipped' }, r.skipped)
    if (r.rejected) metrics.writes.inc({ consumer, outcome: 'rejected' }, r.rejected)
    if (r.deadLettered) metrics.writes.inc({ consumer, outcome: 'dead_lettered' }, r.deadLettered)
    if (r.cacheDeferred) metrics.writes.inc({ consumer, outcome: 'cache_deferred' }, r.cacheDeferred)
  }
}
