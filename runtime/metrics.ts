/**
 * Prometheus metrics of a runtime host (prom-client), for the caller to serve
 * (e.g. at GET /metrics). Everything is counted by the host around the
 * functions, never inside them, so a handler stays unaware of its runtime:
 * requests and latency by route and status, batches and their outcomes from a
 * consumer's invocations, scheduled runs from the scheduler's outcome. The
 * caller names them (`prefix`) and adds its own to the same registry.
 *
 * @example const metrics = createMetrics({ prefix: 'myapp_', labels: { host: 'web-1' } })
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export interface MetricsOptions {
  /** Put before every name the runtime gives: `myapp_` makes `myapp_http_requests_total`. Default none. */
  prefix?: string
  /** Labels on every sample, e.g. `{ host }`. */
  labels?: Record<string, string>
}

export function createMetrics(options: MetricsOptions = {}) {
  const prefix = options.prefix ?? ''
  const registry = new Registry()
  registry.setDefaultLabels(options.labels ?? {})
  collectDefaultMetrics({ register: registry })
  return {
    prefix,
    registry,
    requests: new Counter({ name: `${prefix}http_requests_total`, help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] }),
    latency: new Histogram({
      name: `${prefix}http_request_duration_seconds`, help: 'HTTP request latency by route', labelNames: ['route'], registers: [registry],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    batches: new Counter({ name: `${prefix}consumer_batches_total`, help: 'Consumer batches by outcome (ok / failed, retried)', labelNames: ['consumer', 'outcome'], registers: [registry] }),
    batchLatency: new Histogram({
      name: `${prefix}consumer_batch_duration_seconds`, help: 'Consumer batch invocation time', labelNames: ['consumer'], registers: [registry],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    }),
    scheduledRuns: new Counter({ name: `${prefix}scheduled_runs_total`, help: 'Invocations of @scheduled functions by outcome (ok / failed)', labelNames: ['function', 'outcome'], registers: [registry] }),
    messagesHeld: new Gauge({ name: `${prefix}consumer_messages_held`, help: 'Messages a consumer holds unacknowledged: buffered, being applied or awaiting an earlier batch (read at scrape time)', labelNames: ['consumer'], registers: [registry] }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

/** What the HTTP gateway counts into. */
export type HttpMetrics = Pick<Metrics, 'prefix' | 'registry' | 'requests' | 'latency'>
