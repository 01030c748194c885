/**
 * The floor: the same four endpoints with no validation, no versions, no
 * framework — node:http, ioredis (auto-pipelined, like kvarc's cache client),
 * pg, and an amqplib confirm channel. It reads kvarc's cache layout (a hash
 * {ver, del, val}) so both sides serve the same prepared data. Whatever kvarc
 * spends above this is the platform's and the functions' overhead.
 *
 * Run: PORT=… REDIS_URL=… AMQP_URL=… DATABASE_URL=… KVARC_ADD_QUEUE=… KVARC_DEL_QUEUE=… KVARC_CACHE_PREFIX=… node --import tsx bench/baseline.ts
 */
import { connect } from 'amqplib'
import { createServer, type Server } from 'node:http'
import { Redis } from 'ioredis'
import pg from 'pg'

export async function startBaseline(env: Record<string, string | undefined>): Promise<Server> {
  const redis = new Redis(env.REDIS_URL!, { enableAutoPipelining: true })
  const db = new pg.Pool({ connectionString: env.DATABASE_URL, max: 10 })
  const amqp = await connect(env.AMQP_URL!)
  const channel = await amqp.createConfirmChannel()
  // No reconnection logic in the floor: when a service goes away the process says so and the bench restarts it.
  amqp.on('error', () => {})
  db.on('error', () => {})
  redis.on('error', () => {})
  const prefix = env.KVARC_CACHE_PREFIX ?? 'kv:'
  const send = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  }
  const publish = (res: import('node:http').ServerResponse, queue: string, body: Buffer) =>
    channel.publish('', queue, body, { persistent: true }, error => error ? send(res, 503, { detail: 'queue' }) : send(res, 200, { status: 'queued' }))
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const key = url.searchParams.get('key') ?? ''
    try {
      if (req.method === 'GET' && url.pathname === '/api') {
        const [ver, del, val] = await redis.hmget(prefix + key, 'ver', 'del', 'val')
        if (ver && del !== 'm') return del === '1' ? send(res, 404, { detail: 'key not found' }) : send(res, 200, { data: { key, value: val }, source: 'redis', version: ver })
        const { rows: [row] } = await db.query('SELECT value, version::text AS version FROM kv_store WHERE key = $1 AND NOT deleted', [key])
        if (!row) return send(res, 404, { detail: 'key not found' })
        await redis.multi().hset(prefix + key, 'ver', row.version, 'del', '0', 'val', row.value).expire(prefix + key, 300).exec()
        return send(res, 200, { data: { key, value: row.value }, source: 'postgres', version: row.version })
      }
      if (req.method === 'GET' && url.pathname === '/api/all') {
        return send(res, 200, { data: (await db.query('SELECT key, value FROM kv_store WHERE NOT deleted ORDER BY key LIMIT 100')).rows })
      }
      const chunks: Buffer[] = []
      for await (const chunk of req) chunks.push(chunk as Buffer)
      if (req.method === 'PUT' && url.pathname === '/api') return publish(res, env.KVARC_ADD_QUEUE!, Buffer.concat(chunks))
      if (req.method === 'DELETE' && url.pathname === '/api') return publish(res, env.KVARC_DEL_QUEUE!, Buffer.from(JSON.stringify({ key })))
      send(res, 404, { detail: 'not found' })
    } catch { send(res, 500, { detail: 'error' }) }
  })
  server.keepAliveTimeout = 65_000
  await new Promise<void>(resolve => server.listen(Number(env.PORT ?? 0), env.HOST ?? '127.0.0.1', resolve))
  server.on('close', () => { redis.disconnect(); void db.end(); void amqp.close().catch(() => {}) })
  amqp.on('close', () => server.emit('broker-lost'))
  return server
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  const server = await startBaseline(process.env)
  server.on('broker-lost', () => process.exit(3))
  const address = server.address()
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : ''}\n`)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => server.close(() => process.exit(0)))
}
