/**
 * Typed errors. HTTP handlers throw these; `withHttpErrors` (http.ts) is the one
 * place that turns them into responses. Consumers use `PoisonMessageError` to
 * say "never retry this message".
 */
export class HttpError extends Error {
  override name = 'HttpError'
  readonly statusCode: number
  readonly headers: Record<string, string>
  constructor(statusCode: number, message: string, options?: { cause?: unknown, headers?: Record<string, string> }) {
    super(message, { cause: options?.cause })
    this.statusCode = statusCode
    this.headers = options?.headers ?? {}
  }
}

/** 422: the request is well-formed HTTP but its content breaks the contract. */
export class ValidationError extends HttpError {
  override name = 'ValidationError'
  constructor(message: string) { super(422, message) }
}

/** 413: a body or value larger than the contract allows. */
export class PayloadTooLargeError extends HttpError {
  override name = 'PayloadTooLargeError'
  constructor(message: string) { super(413, message) }
}

/** 503 with Retry-After: a backing service is down; the client may retry, nothing was claimed done. */
export class ServiceUnavailableError extends HttpError {
  override name = 'ServiceUnavailableError'
  constructor(message: string, options?: { cause?: unknown, retryAfterSeconds?: number }) {
    super(503, message, { cause: options?.cause, headers: { 'retry-after': String(options?.retryAfterSeconds ?? 1) } })
  }
}

/** A queue message that can never apply. It goes to the dead-letter queue with this reason; it is never retried. */
export class PoisonMessageError extends Error {
  override name = 'PoisonMessageError'
}
