/**
 * The gateway's request metrics: per route (a function's route key, or the
 * label of an answer the gateway gives itself: `unmatched`, `static`,
 * `GET /health`), counter children resolved once per route and status and a
 * latency child per route, so a request does no label lookup of its own. The
 * in-flight gauge is read at scrape time, at no cost per request.
 */
import { Gauge } from 'prom-client'
import type { HttpMetrics } from '../metrics.js'
import type { RouteMeter } from './routes.js'

class Meter implements RouteMeter {
  private readonly counts = new Map<number, { inc(): void }>()
  private readonly latency: { observe(seconds: number): void }

  constructor(private readonly metrics: HttpMetrics, private readonly label: string) {
    this.latency = metrics.latency.labels(label)
  }

  /** One answer with `status`, for a request that arrived at performance.now() `started`. */
  record(status: number, started: number): void {
    const elapsed = (performance.now() - started) / 1000
    let child = this.counts.get(status)
    if (!child) this.counts.set(status, child = this.metrics.requests.labels(this.label, String(status)))
    child.inc()
    this.latency.observe(elapsed)
  }
}

export class Meters {
  /** Answers the gateway gives itself (404, 405, static files, endpoints), by label. */
  private readonly own = new Map<string, Meter>()

  /** `inFlight`: requests being answered, the scrape itself included. */
  constructor(private readonly metrics: HttpMetrics, inFlight: () => number) {
    // What a drain (or a stuck dependency) is waiting on.
    new Gauge({
      name: `${metrics.prefix}http_requests_in_flight`, help: 'HTTP requests being answered (read at scrape time, the scrape itself excluded)',
      registers: [metrics.registry], collect() { this.set(Math.max(0, inFlight() - 1)) },
    })
  }

  /** A function's meter, made once at start. */
  forRoute(routeKey: string): RouteMeter {
    return new Meter(this.metrics, routeKey)
  }

  /** The meter of an answer the gateway gives itself. */
  ownAnswer(label: string): RouteMeter {
    let meter = this.own.get(label)
    if (!meter) this.own.set(label, meter = new Meter(this.metrics, label))
    return meter
  }
}
