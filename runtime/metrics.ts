/**
 * Prometheus metrics of a platform host (prom-client), served at GET /metrics.
 * Everything is counted by the host around the functions, never inside them, so
 * a handler stays unaware of its runtime: cache hits and misses come from the
 * GET answer's `source`, publish confirms and failures from PUT/DELETE status
 * codes, applied / skipped / dead-lettered counts from a consumer's batch result,
 * scheduled runs from the scheduler's outcome.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export function createMetrics(labels: Record<string, string> = {}) {
  const registry = new Registry()
  registry.setDefaultLabels(labels)
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    requests: new Counter({ name: 'kvarc_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] }),
    latency: new Histogram({
      name: 'kvarc_http_request_duration_seconds', help: 'HTTP request latency by route', labelNames: ['route'], registers: [registry],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    cacheReads: new Counter({ name: 'kvarc_cache_reads_total', help: 'GET /api answers (200 and 404) by source: redis (hit, including negative entries) or postgres (miss)', labelNames: ['source'], registers: [registry] }),
    publishes: new Counter({ name: 'kvarc_publishes_total', help: 'Writes published: confirmed (200) or failed (503)', labelNames: ['queue', 'outcome'], registers: [registry] }),
    batches: new Counter({ name: 'kvarc_consumer_batches_total', help: 'Consumer batches by outcome (ok / failed, retried)', labelNames: ['consumer', 'outcome'], registers: [registry] }),
    writes: new Counter({ name: 'kvarc_consumer_writes_total', help: 'Writes seen by consumers: applied, skipped (older than stored), dead_lettered', labelNames: ['consumer', 'outcome'], registers: [registry] }),
    batchLatency: new Histogram({
      name: 'kvarc_consumer_batch_duration_seconds', help: 'Consumer batch invocation time', labelNames: ['consumer'], registers: [registry],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    }),
    scheduledRuns: new Counter({ name: 'kvarc_scheduled_runs_total', help: 'Invocations of @scheduled functions by outcome (ok / failed)', labelNames: ['function', 'outcome'], registers: [registry] }),
    messagesHeld: new Gauge({ name: 'kvarc_consumer_messages_held', help: 'Messages a consumer holds unacknowledged: buffered, being applied or awaiting an earlier batch (read at scrape time)', labelNames: ['consumer'], registers: [registry] }),
    queueDepth: new Gauge({ name: 'kvarc_queue_messages', help: 'Messages ready in a queue (read at scrape time)', labelNames: ['queue'], registers: [registry] }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
