#!/usr/bin/env node
/**
 * Why kvarc's handlers do not use @architect/functions' `arc.http`: it costs more
 * than it gives on the hot path. Invokes the same tiny handler N times bare and
 * wrapped by arc.http, with a small JSON answer, and prints the cost per call.
 * It also shows what arc.http does with a malformed JSON body.
 *
 *   node scripts/measure-arc-functions.mjs [calls]
 */
import arc from '@architect/functions'

const calls = Number(process.argv[2] ?? 200_000)
const event = {
  version: '2.0', routeKey: 'GET /api', rawPath: '/api', rawQueryString: 'key=k',
  queryStringParameters: { key: 'k' },
  headers: { 'accept-encoding': 'gzip, deflate, br', 'content-type': 'application/json' },
  requestContext: { http: { method: 'GET', path: '/api' } }, isBase64Encoded: false,
}
const answer = { data: { key: 'k', value: 'v'.repeat(64) }, source: 'redis', version: '3765941921457897472' }

const bare = async () => ({ statusCode: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(answer) })
const wrapped = arc.http(async () => ({ json: answer }))

async function time(name, fn) {
  for (let i = 0; i < 20_000; i++) await fn(event, {}) // warm up the JIT
  const start = process.hrtime.bigint()
  let last
  for (let i = 0; i < calls; i++) last = await fn(event, {})
  const ns = Number(process.hrtime.bigint() - start) / calls
  console.log(`${name.padEnd(28)} ${(ns / 1000).toFixed(2).padStart(7)} µs/call   body ${String(last.body).length} bytes, content-encoding ${last.headers?.['content-encoding'] ?? 'none'}`)
  return ns
}

const a = await time('bare handler', bare)
const b = await time('arc.http-wrapped handler', wrapped)
console.log(`arc.http adds ${((b - a) / 1000).toFixed(2)} µs per call (${(b / a).toFixed(1)}x)`)

try {
  const res = await arc.http(async req => ({ json: { got: req.body } }))({ ...event, routeKey: 'PUT /api', body: '{"key":', requestContext: { http: { method: 'PUT' } } }, {})
  console.log(`malformed JSON body through arc.http: status ${res.statusCode}`)
} catch (error) {
  // Under sandbox or Lambda this throw becomes an HTML 500 before the handler runs.
  console.log(`malformed JSON body through arc.http: throws "${error.message}" before the handler runs`)
}
