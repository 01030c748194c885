/**
 * Reading a request: the header limit node enforces, and the body, read only
 * once a route has taken the request, within the body limit. Over the limit is
 * decided from content-length before any of the body is read (and before a
 * client that sent `Expect: 100-continue` is told to go on); a chunked body is
 * dropped as soon as it passes the limit.
 *
 * Per-request code avoids closures (see invoke.ts): the listeners are
 * module-level functions that find their state on the request they listen to.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { deferred } from '../invoke.js'

/**
 * 64 KiB of request line and headers (node's default is 16 KiB): a valid request
 * always fits (a key of 2,048 bytes is at most 6,144 characters percent-encoded,
 * and nginx passes request lines of up to 16 KiB), so an over-long key reaches
 * its function and gets the function's 422 rather than a bare 431. The same
 * figure is given to `arc sandbox` (package.json, test/sandbox/sandbox.ts).
 */
export const MAX_HEADER_BYTES = 64 * 1024

/** The body passed the limit: answer 413 and close the connection. */
export const TOO_LARGE = Symbol('too large')
/** The client went away mid-body: nobody is left to answer. */
export const CLIENT_GONE = Symbol('client gone')

export type BodyRead = Buffer | typeof TOO_LARGE | typeof CLIENT_GONE

/**
 * What the request says of its body: undefined when it has none, -1 when it is
 * chunked, else its declared content-length.
 */
export function declaredBodyLength(req: IncomingMessage): number | undefined {
  const declared = req.headers['content-length']
  if (declared !== undefined) return Number(declared)
  return req.headers['transfer-encoding'] !== undefined ? -1 : undefined
}

/** A body the gateway will not read: the answer must ask the client for a fresh connection. */
export function hasUnreadBody(req: IncomingMessage): boolean {
  const declared = req.headers['content-length']
  return (declared !== undefined && declared !== '0') || req.headers['transfer-encoding'] !== undefined
}

const BODY = Symbol('gateway body')

interface BodyState {
  chunks: Buffer[]
  size: number
  limit: number
  done: boolean
  resolve: (value: BodyRead) => void
}

type BodyRequest = IncomingMessage & { [BODY]?: BodyState }

function onBodyData(this: BodyRequest, chunk: Buffer): void {
  const state = this[BODY]!
  if (state.done) return
  state.size += chunk.length
  if (state.size > state.limit) {
    // Stop holding the body; what still arrives is read and dropped by node.
    state.done = true
    state.chunks.length = 0
    state.resolve(TOO_LARGE)
    return
  }
  state.chunks.push(chunk)
}

function onBodyEnd(this: BodyRequest): void {
  const state = this[BODY]!
  if (state.done) return
  state.done = true
  state.resolve(state.chunks.length === 1 ? state.chunks[0]! : Buffer.concat(state.chunks, state.size))
}

/** An error or a close before the end: the client went away mid-body. */
function onBodyGone(this: BodyRequest): void {
  const state = this[BODY]!
  if (state.done) return
  state.done = true
  state.resolve(CLIENT_GONE)
}

/**
 * Reads a body of `expected` bytes (-1: chunked), stopping (and discarding the
 * rest) once it passes `limit`. A client that asked first gets its 100
 * Continue now, when the gateway knows it will read what follows.
 */
export function readBody(req: IncomingMessage, res: ServerResponse, limit: number, expectsContinue: boolean): Promise<BodyRead> {
  if (expectsContinue) res.writeContinue()
  const { promise, resolve } = deferred<BodyRead>()
  const body = req as BodyRequest
  body[BODY] = { chunks: [], size: 0, limit, done: false, resolve }
  body.on('data', onBodyData)
  body.on('end', onBodyEnd)
  body.on('error', onBodyGone)
  body.on('close', onBodyGone)
  return promise
}
