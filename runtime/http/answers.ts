/**
 * Every answer the gateway writes, in one place: the shape (HttpAnswer), the
 * gateway's own JSON errors (a `detail` for a person, never a stack trace),
 * how a function's outcome becomes an answer (500 / 504 / its result), and the
 * raw answers to requests node could not parse. Written in one go with a
 * content-length, so keep-alive never needs chunked encoding.
 */
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Invocation } from '../invoke.js'
import { InvalidResultError, resultToAnswer, type HttpAnswer } from './event.js'

/** What the gateway logs when a function misbehaves (pino's Logger fits). */
export interface GatewayLogger {
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}

const JSON_ERROR_HEADERS = Object.freeze({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })

/** A JSON error answer with a `detail` for a person. */
export function errorAnswer(statusCode: number, detail: string, extraHeaders?: Record<string, string>): HttpAnswer {
  return { statusCode, headers: extraHeaders ? { ...JSON_ERROR_HEADERS, ...extraHeaders } : { ...JSON_ERROR_HEADERS }, body: JSON.stringify({ detail }) }
}

/** 405 naming the methods the path takes, in `allow` too. */
export function methodNotAllowed(method: string, pathname: string, allow: string): HttpAnswer {
  return errorAnswer(405, `method ${method} is not allowed on ${pathname}; use ${allow}`, { allow })
}

export function bodyTooLarge(limit: number): HttpAnswer {
  return errorAnswer(413, `request body is larger than ${limit} bytes`)
}

export const INTERNAL_ERROR_DETAIL = 'internal error'

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`
}

/**
 * A settled invocation as API Gateway answers it: the function's result, 504
 * past its timeout, 500 when it threw or returned what API Gateway rejects.
 * The client gets a generic detail; the log gets the cause.
 */
export function outcomeAnswer(invocation: Invocation, routeKey: string, timeoutMs: number, logger: GatewayLogger): HttpAnswer {
  if (invocation.outcome === 'timeout') {
    logger.warn({ route: routeKey, timeoutMs }, 'function timed out')
    return errorAnswer(504, `the function did not answer within ${seconds(timeoutMs)}`)
  }
  if (invocation.outcome === 'failed') {
    logger.error({ err: invocation.error, route: routeKey }, 'function failed')
    return errorAnswer(500, INTERNAL_ERROR_DETAIL)
  }
  try {
    return resultToAnswer(invocation.value)
  } catch (error) {
    if (!(error instanceof InvalidResultError)) throw error
    logger.error({ err: error, route: routeKey }, 'function returned an invalid response')
    return errorAnswer(500, `${INTERNAL_ERROR_DETAIL}: the function returned an invalid response`)
  }
}

/**
 * Writes an answer in one go with its content-length. `closeConnection` asks
 * the client to open a new connection next time (shutdown, or a request body
 * left unread).
 */
export function writeAnswer(res: ServerResponse, answer: HttpAnswer, closeConnection = false): void {
  const headers = answer.headers
  headers['content-length'] = String(typeof answer.body === 'string' ? Buffer.byteLength(answer.body) : answer.body.length)
  if (closeConnection) headers.connection = 'close'
  res.writeHead(answer.statusCode, headers)
  res.end(answer.body)
}

/**
 * Answers a request node could not parse (no ServerResponse exists for it):
 * 431 for headers past the limit, 408 for a request not received in time, 400
 * for anything else, then closes the connection. A reset socket gets nothing.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return }
  const [status, reason, detail] = error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'request headers are too large']
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'the request was not received in time']
      : [400, 'Bad Request', 'malformed HTTP request']
  const body = JSON.stringify({ detail })
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}
