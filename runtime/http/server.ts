/**
 * The gateway's server lifecycle: one node:http server, its timeouts, the
 * requests in flight, and a graceful close.
 *
 * Keep-alive outlives nginx's upstream keep-alive, so nginx always closes
 * first and never sends on a socket the gateway is closing. `close()` stops
 * accepting, lets in-flight requests finish (up to a deadline; their answers
 * carry `connection: close`), closes idle keep-alive sockets as they go idle,
 * then cuts off whatever still runs.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { answerClientError, errorAnswer, writeAnswer, INTERNAL_ERROR_DETAIL, type GatewayLogger } from './answers.js'
import { MAX_HEADER_BYTES } from './request.js'

export interface ServerOptions {
  /** Request line and headers together; default MAX_HEADER_BYTES. */
  maxHeaderBytes?: number
  /**
   * Idle keep-alive sockets are closed after this long (default 65 s). Must
   * exceed a proxy's upstream `keepalive_timeout` (nginx: 60 s by default), so
   * the proxy, not the gateway, closes an idle connection and never races a
   * request into a closing socket.
   */
  keepAliveTimeoutMs?: number
  /** How long close() waits for in-flight requests before cutting them off; default 20 s. */
  shutdownTimeoutMs?: number
  logger: GatewayLogger
}

/** What answers each request; `started` is performance.now() at arrival. */
export interface RequestHandling {
  handle(req: IncomingMessage, res: ServerResponse, started: number, expectsContinue: boolean): Promise<void>
}

export class GatewayServer {
  readonly server: Server
  /** Once true, every answer asks for `connection: close`. */
  closing = false
  /** Requests being answered right now. */
  active = 0
  private handling: RequestHandling | undefined
  private drained: (() => void) | undefined
  private closed: Promise<void> | undefined
  private readonly shutdownTimeoutMs: number
  private readonly logger: GatewayLogger

  constructor(options: ServerOptions) {
    this.logger = options.logger
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 20_000
    const keepAliveTimeout = options.keepAliveTimeoutMs ?? 65_000
    // headersTimeout above keepAliveTimeout, or node may cut a reused socket as its next request starts;
    // requestTimeout (whole request, body included) bounds slow uploads.
    const headersTimeout = keepAliveTimeout + 1_000
    this.server = createServer({
      keepAliveTimeout, headersTimeout, requestTimeout: Math.max(120_000, headersTimeout + 1_000),
      maxHeaderSize: options.maxHeaderBytes ?? MAX_HEADER_BYTES,
    }, (req, res) => { void this.serve(req, res, false) })
    // Answer an oversized or misrouted `Expect: 100-continue` request before the client sends its body.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => { void this.serve(req, res, true) })
    this.server.on('clientError', answerClientError)
  }

  /** Starts accepting; `handling` answers every request from now on. */
  async listen(port: number, host: string, handling: RequestHandling): Promise<AddressInfo> {
    this.handling = handling
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    return this.server.address() as AddressInfo
  }

  /** Answers one request; never rejects, and counts it in flight until it is answered. */
  private async serve(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const started = performance.now()
    this.active++
    try {
      await this.handling!.handle(req, res, started, expectsContinue)
    } catch (error) {
      this.logger.error({ err: error, url: req.url, method: req.method }, 'host failed to answer a request')
      if (!res.headersSent) writeAnswer(res, errorAnswer(500, INTERNAL_ERROR_DETAIL), true)
      else res.destroy()
    } finally {
      this.active--
      if (this.closing) {
        // The answer carried `connection: close`; sockets now idle can go at once.
        this.server.closeIdleConnections()
        if (this.active === 0) this.drained?.()
      }
    }
  }

  /** Idempotent: every call returns the same promise, which never rejects (failures are logged). */
  close(): Promise<void> {
    this.closed ??= this.drain()
    return this.closed
  }

  private async drain(): Promise<void> {
    this.closing = true
    const stopped = new Promise<void>(resolve => this.server.close(() => resolve()))
    this.server.closeIdleConnections()
    if (this.active > 0) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        new Promise<void>(resolve => { this.drained = resolve }),
        new Promise<void>(resolve => { timer = setTimeout(resolve, this.shutdownTimeoutMs) }),
      ])
      clearTimeout(timer)
      if (this.active > 0) this.logger.warn({ active: this.active }, 'shutdown deadline passed: cutting off requests still running')
    }
    this.server.closeAllConnections()
    try {
      await stopped
    } catch (error) {
      this.logger.error({ err: error }, 'error while closing the http host')
    }
  }
}
