/**
 * A minimal HTTP/1.1 client over a keep-alive agent: one connection per
 * concurrent caller, reused, so a load run measures the stack and not TCP
 * handshakes. Every request has a deadline: a request that outlives it is an
 * answer too (status 0, "unknown outcome"), never a hang.
 */
import http from 'node:http'

export interface Answer {
  /** HTTP status; 0 when no answer came (connection refused/reset, deadline). */
  status: number
  body: string
  retryAfter?: string
  error?: string
}

export function keepAliveAgent(maxSockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' })
}

export interface RequestOptions {
  agent: http.Agent
  method: string
  /** Path with query, e.g. /api?key=k */
  path: string
  body?: string
  timeoutMs: number
}

/** Sends one request to `base` (http://host:port); always resolves. */
export function request(base: URL, options: RequestOptions): Promise<Answer> {
  return new Promise(resolve => {
    let settled = false
    const done = (answer: Answer) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(answer)
    }
    const headers: http.OutgoingHttpHeaders = {}
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      headers['content-length'] = Buffer.byteLength(options.body)
    }
    const req = http.request({
      host: base.hostname,
      port: base.port,
      method: options.method,
      path: options.path,
      agent: options.agent,
      headers,
    }, res => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => done({
        status: res.statusCode ?? 0,
        body: Buffer.concat(chunks).toString('utf8'),
        retryAfter: res.headers['retry-after'] as string | undefined,
      }))
      res.on('error', error => done({ status: 0, body: '', error: error.message }))
    })
    const timer = setTimeout(() => {
      done({ status: 0, body: '', error: `no answer within ${options.timeoutMs} ms` })
      req.destroy()
    }, options.timeoutMs)
    req.on('error', error => done({ status: 0, body: '', error: (error as NodeJS.ErrnoException).code ?? error.message }))
    req.end(options.body)
  })
}

/** The version a 200 PUT/DELETE answered with, or undefined. */
export function versionOf(answer: Answer): string | undefined {
  if (answer.status !== 200) return undefined
  try {
    const body = JSON.parse(answer.body) as { version?: unknown }
    return typeof body.version === 'string' ? body.version : undefined
  } catch {
    return undefined
  }
}
