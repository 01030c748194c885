/**
 * DELETE /api with a broker that accepts TCP connections but never speaks
 * AMQP (a black hole, the worse kind of outage): 503 with Retry-After once the
 * connect times out, nothing claimed queued. Its own file: config is read once per process.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpEvent, isolate, SERVICES, type Isolated, declareQueues } from '../../../test/support/isolated.js'
import { bodyOf, queueDepth } from '../../../test/support/kv.js'
import { handler } from './index.js'

let iso: Isolated
let blackHole: Server
const sockets = new Set<Socket>()

const del = (query: string) => handler(httpEvent('DELETE', '/api', { query }))

beforeAll(async () => {
  blackHole = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>(resolve => blackHole.listen(0, '127.0.0.1', resolve))
  const port = (blackHole.address() as { port: number }).port
  iso = await isolate('deldown')
  Object.assign(process.env, iso.env, { AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}` })
  await declareQueues(iso)
})

afterAll(async () => {
  for (const socket of sockets) socket.destroy()
  await new Promise(resolve => blackHole?.close(resolve))
  await iso?.cleanup()
})

describe('DELETE /api with a broker that never answers', () => {
  it('answers 503 with Retry-After and a JSON detail', async () => {
    const result = await del('key=k')
    expect(result.statusCode).toBe(503)
    expect(result.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(result.headers['retry-after']).toMatch(/^[1-9][0-9]*$/)
    expect(bodyOf(result)).toEqual({ detail: 'the queue is unavailable; the write was not acknowledged, retry it' })
  })

  it('still answers 422 for a missing key', async () => {
    const result = await del('')
    expect(result.statusCode).toBe(422)
    expect(bodyOf(result)).toEqual({ detail: 'query parameter "key" is required, e.g. /api?key=my-key' })
  })

  it('queued nothing', async () => {
    expect(await queueDepth(SERVICES.amqp, iso.config.delQueue)).toBe(0)
    expect(await queueDepth(SERVICES.amqp, iso.config.addQueue)).toBe(0)
  })
})
