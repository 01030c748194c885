/**
 * ANY /* through the handler: 405 with Allow on API paths, 404 JSON elsewhere,
 * and the @static files read by @architect/asap from the project's public/
 * folder, as under sandbox (ARC_ENV=testing, ARC_STATIC_BUCKET = the folder).
 * The S3 read of AWS is asap's own code and is not exercised here.
 */
import inventory from '@architect/inventory'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { httpEvent } from '../../../test/support/isolated.js'
import { bodyOf } from '../../../test/support/kv.js'
import { SECURITY_HEADERS } from '../../shared/security-headers.js'
import { handler } from './index.js'
import { API_ROUTES } from './routes.js'

const ROOT = resolve(import.meta.dirname, '../../..')
const PUBLIC = join(ROOT, 'public')

/** The event API Gateway (and sandbox) gives the catch-all. */
function event(method: string, path: string, body?: string) {
  const e = httpEvent(method, path, body === undefined ? {} : { body })
  const routeKey = 'ANY /{proxy+}'
  return { ...e, routeKey, requestContext: { ...e.requestContext, routeKey }, pathParameters: { proxy: path.slice(1) } }
}

beforeAll(() => {
  // What sandbox gives every function when app.arc has @static; read once, at the first invocation.
  process.env.ARC_ENV = 'testing'
  process.env.ARC_STATIC_BUCKET = PUBLIC
})

describe('any /* — wrong methods and unknown paths', () => {
  it('answers 405 with Allow for a method app.arc does not declare on an API path', async () => {
    for (const [method, path, allow] of [['POST', '/api', 'GET, PUT, DELETE'], ['PATCH', '/api', 'GET, PUT, DELETE'], ['PUT', '/api/all', 'GET'], ['DELETE', '/api/all', 'GET'], ['OPTIONS', '/api', 'GET, PUT, DELETE']] as const) {
      // Act
      const result = await handler(event(method, path, '{}'))
      // Assess
      expect(result, `${method} ${path}`).toEqual({
        statusCode: 405,
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', allow },
        body: JSON.stringify({ detail: `method ${method} is not allowed on ${path}; use ${allow}` }),
      })
    }
  })

  it('answers 404 JSON naming the method and path for anything else', async () => {
    for (const [method, path] of [['POST', '/'], ['GET', '/api/other'], ['DELETE', '/nowhere'], ['GET', '/nope.js'], ['GET', '/no-such-folder/'], ['GET', '/api/all/'], ['PUT', '/a"b\\c']] as const) {
      const result = await handler(event(method, path, method === 'GET' ? undefined : 'x'))
      expect(result, `${method} ${path}`).toEqual({
        statusCode: 404,
        headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
        body: JSON.stringify({ detail: `no route for ${method} ${path}` }),
      })
    }
  })

  it('never reads a file outside the static folder', async () => {
    for (const path of ['/../package.json', '/./index.html', '/..\\package.json', '/../app.arc']) {
      const result = await handler(event('GET', path))
      expect(result.statusCode, path).toBe(404)
      expect(bodyOf(result), path).toEqual({ detail: `no route for GET ${path}` })
    }
  })

  it('knows exactly the paths and methods app.arc declares', async () => {
    // The table in routes.ts must follow app.arc: a new route there needs its methods here.
    const { inv } = await inventory({ cwd: ROOT })
    const declared: Record<string, string[]> = {}
    for (const route of inv.http as { method: string, path: string }[]) {
      if (route.path === '/*') continue
      ;(declared[route.path] ??= []).push(route.method.toUpperCase())
    }
    const sorted = (table: Record<string, readonly string[]>) => Object.fromEntries(Object.entries(table).map(([path, methods]) => [path, [...methods].sort()]))
    expect(sorted(API_ROUTES)).toEqual(sorted(declared))
  })
})

describe('any /* — the static form', () => {
  it('serves public/index.html at / and the form files with their types', async () => {
    for (const [path, file, type] of [['/', 'index.html', /^text\/html/], ['/index.html', 'index.html', /^text\/html/], ['/app.js', 'app.js', /javascript/], ['/style.css', 'style.css', /^text\/css/]] as const) {
      // Act
      const result = await handler(event('GET', path)) as { statusCode: number, headers: Record<string, string>, body: string, isBase64Encoded?: boolean }
      // Assess
      expect(result.statusCode, path).toBe(200)
      expect(result.headers['content-type'], path).toMatch(type)
      expect(result.headers, path).toMatchObject(SECURITY_HEADERS)
      const body = result.isBase64Encoded ? Buffer.from(result.body, 'base64').toString() : result.body
      expect(body, path).toBe(readFileSync(join(PUBLIC, file), 'utf8'))
    }
  })

  it('answers HEAD for a file, and 404 JSON for HEAD of a missing one', async () => {
    const head = await handler(event('HEAD', '/style.css'))
    expect(head.statusCode).toBe(200)
    const missing = await handler(event('HEAD', '/missing.css'))
    expect(missing.statusCode).toBe(404)
    expect(bodyOf(missing)).toEqual({ detail: 'no route for HEAD /missing.css' })
  })
})
