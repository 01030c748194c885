/**
 * Test helpers around an isolated environment (ops/isolated.ts: its own
 * database, queue names and cache prefix, and its cleanup; re-exported here so
 * a test takes its fixture and these helpers from one place): polling until
 * something holds, the events API Gateway and EventBridge send, declaring the
 * queues up front.
 *
 * @example
 *   const iso = await isolate()
 *   Object.assign(process.env, iso.env)   // before the handler's first call
 *   afterAll(() => iso.cleanup())
 */
import { connect } from 'amqplib'
import { randomUUID } from 'node:crypto'
import { SERVICES, type Isolated } from '../../ops/isolated.js'
import { assertQueues } from '../../src/shared/queue.js'

export { isolate, SERVICES, type Isolated } from '../../ops/isolated.js'

/** Waits until `check` returns a truthy value, polling; fails with `what` after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    try {
      const value = await check()
      if (value) return value
    } catch (error) { lastError = error }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: lastError })
    await new Promise(resolve => setTimeout(resolve, delay))
  }
}

/** An API Gateway v2 (HTTP API) event, as sandbox and API Gateway build it. */
export function httpEvent(method: string, path: string, options: { query?: string, body?: string, base64?: boolean, headers?: Record<string, string> } = {}) {
  const routeKey = `${method} ${path}`
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers: { 'content-type': 'application/json', ...options.headers },
    requestContext: { http: { method, path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' }, routeKey, timeEpoch: Math.floor(Date.now() / 1000) },
    ...(options.body === undefined ? {} : { body: options.body }),
    isBase64Encoded: options.base64 ?? false,
  }
}

/**
 * The event EventBridge sends the target of a scheduled rule ("Scheduled Event",
 * as in the AWS docs' example); `time` is the occurrence, to the second.
 */
export function scheduledEvent(rule = 'KvarcStaging-PurgeTombstonesScheduledEvent-1Q2W3E4R5T6Y', at = new Date()) {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: [`arn:aws:events:us-east-1:123456789012:rule/${rule}`],
    detail: {},
  }
}

/** Declares an isolated environment's queues (and dead-letter queues) up front, so "nothing was queued" can be checked before the first write. */
export async function declareQueues(iso: Isolated): Promise<void> {
  const connection = await connect(SERVICES.amqp)
  try {
    await assertQueues(await connection.createChannel(), [iso.config.addQueue, iso.config.delQueue])
  } finally {
    await connection.close()
  }
}
