import { connect } from 'amqplib'
import type { Server } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from '../test/support/isolated.js'
import { startBaseline } from './baseline.js'
import { prepareData } from './data.js'

let iso: Isolated
let server: Server
let url: string

beforeAll(async () => {
  iso = await isolate('benchbase')
  await prepareData(iso.config, { hitKeys: 3, missKeys: 3, valueBytes: 8 })
  server = await startBaseline({ ...iso.env, PORT: '0' })
  const address = server.address()
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
})

afterAll(async () => {
  server?.closeAllConnections()
  await new Promise(resolve => server?.close(resolve))
  await iso?.cleanup()
})

describe('bench baseline server', () => {
  it('answers a cached key from Redis and an uncached one from PostgreSQL', async () => {
    const hit = await fetch(`${url}/api?key=hit-1`)
    expect(hit.status).toBe(200)
    expect(await hit.json()).toMatchObject({ data: { key: 'hit-1', value: 'vvvvvvvv' }, source: 'redis' })
    const miss = await (await fetch(`${url}/api?key=miss-2`)).json()
    expect(miss).toMatchObject({ data: { key: 'miss-2', value: 'vvvvvvvv' }, source: 'postgres' })
    expect(await (await fetch(`${url}/api?key=miss-2`)).json()).toMatchObject({ source: 'redis' })
    expect((await fetch(`${url}/api?key=nope`)).status).toBe(404)
  })

  it('lists a page and queues PUT and DELETE on the isolated queues', async () => {
    const all = await (await fetch(`${url}/api/all`)).json() as { data: { key: string }[] }
    expect(all.data.map(r => r.key)).toEqual(['hit-0', 'hit-1', 'hit-2', 'miss-0', 'miss-1', 'miss-2'])
    const put = await fetch(`${url}/api`, { method: 'PUT', body: JSON.stringify({ key: 'k', value: 'v' }) })
    expect(await put.json()).toEqual({ status: 'queued' })
    expect((await fetch(`${url}/api?key=k`, { method: 'DELETE' })).status).toBe(200)
    const connection = await connect(iso.config.amqpUrl)
    try {
      const channel = await connection.createChannel()
      expect((await channel.checkQueue(iso.config.addQueue)).messageCount).toBe(1)
      expect((await channel.checkQueue(iso.config.delQueue)).messageCount).toBe(1)
    } finally {
      await connection.close()
    }
  })
})
