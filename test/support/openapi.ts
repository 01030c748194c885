/**
 * Checks a real answer against the API's OpenAPI document (public/openapi.json,
 * from docs/openapi.yaml): its status must be documented for the operation the
 * request reached, its body must match that response's schema (Ajv, JSON Schema
 * 2020-12 as OpenAPI 3.1 uses it), its required headers must be there, and
 * kvarc's own headers (ETag, Location, Retry-After…) must be documented where
 * they appear. A request no operation takes is checked against the document's
 * `x-kvarc-unrouted` answers; a 405 there must name in `Allow` exactly the
 * methods the document gives the path. The end-to-end tests run every answer
 * they receive through `checkResponse`, so the document cannot drift from the code.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))
export const OPENAPI_FILE = join(ROOT, 'public', 'openapi.json')

type Json = Record<string, any>

/** The document as served. Read once per test process. */
export const openapi: Json = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'))

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const

/**
 * kvarc's own answer headers: wherever one appears, the document must name it
 * for that answer (headers any HTTP server sends, such as Date, are not checked).
 */
const KVARC_HEADERS = ['etag', 'x-kvarc-source', 'preference-applied', 'location', 'retry-after', 'www-authenticate', 'allow']

/** A local `$ref` (`#/components/…`) resolved against the document. */
function resolve<T = Json>(node: Json): T {
  let current = node
  for (let hops = 0; current && typeof current.$ref === 'string'; hops++) {
    if (hops > 10) throw new Error(`$ref loop at ${node.$ref}`)
    const pointer = (current.$ref as string).replace(/^#\//, '').split('/').map(part => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    current = pointer.reduce<Json>((at, part) => at?.[part], openapi)
    if (current === undefined) throw new Error(`unresolved $ref ${node.$ref}`)
  }
  return current as T
}

/**
 * Ajv, holding the document's component schemas under one id, so a response
 * schema's `#/components/schemas/X` resolves. Strict: a keyword Ajv does not
 * know (a typo in the document) is an error, not silently ignored.
 */
const ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allErrors: true })
const COMPONENTS_ID = 'kvarc-openapi-components'
function rebase(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(rebase)
  if (schema === null || typeof schema !== 'object') return schema
  return Object.fromEntries(Object.entries(schema).map(([name, value]) => [
    name,
    name === '$ref' && typeof value === 'string' ? value.replace('#/components/schemas/', `${COMPONENTS_ID}#/$defs/`) : rebase(value),
  ]))
}
ajv.addSchema({ $id: COMPONENTS_ID, $defs: rebase(openapi.components?.schemas ?? {}) as Json })
const compiled = new Map<unknown, ValidateFunction>()
function validatorFor(schema: Json): ValidateFunction {
  let validate = compiled.get(schema)
  if (!validate) {
    validate = ajv.compile(rebase(schema) as Json)
    compiled.set(schema, validate)
  }
  return validate
}

/** Every schema the document holds, compiled: throws on one Ajv cannot compile in strict mode. */
export function compileAllSchemas(): number {
  let count = 0
  for (const name of Object.keys(openapi.components?.schemas ?? {})) {
    ajv.getSchema(`${COMPONENTS_ID}#/$defs/${name}`)
    count++
  }
  const visitResponses = (responses: Json | undefined) => {
    for (const response of Object.values(responses ?? {})) {
      const resolved = resolve(response as Json)
      for (const media of Object.values(resolved.content ?? {})) {
        if ((media as Json).schema) { validatorFor((media as Json).schema); count++ }
      }
      for (const header of Object.values(resolved.headers ?? {})) {
        const schema = resolve(header as Json).schema
        if (schema) { validatorFor(schema); count++ }
      }
    }
  }
  for (const item of Object.values(openapi.paths ?? {})) {
    for (const method of METHODS) {
      const operation = (item as Json)[method] as Json | undefined
      if (!operation) continue
      visitResponses(operation.responses)
      for (const parameter of operation.parameters ?? []) {
        const schema = resolve(parameter).schema
        if (schema) { validatorFor(schema); count++ }
      }
      const body = operation.requestBody && resolve(operation.requestBody)
      for (const media of Object.values(body?.content ?? {})) { validatorFor((media as Json).schema); count++ }
    }
  }
  visitResponses(openapi['x-kvarc-unrouted']?.responses)
  return count
}

/** Why `value` does not match a schema of the document; undefined when it does. */
export function schemaProblem(schema: Json, value: unknown): string | undefined {
  const validate = validatorFor(schema)
  return validate(value) ? undefined : describeErrors(validate)
}

/** A `$ref` of the document resolved (anything else as is). */
export function resolveRef<T = Json>(node: Json): T {
  return resolve<T>(node)
}

/** The methods the document gives a path, upper case; undefined when it has no such path. */
export function documentedMethods(path: string): string[] | undefined {
  const item = openapi.paths?.[path] as Json | undefined
  return item ? METHODS.filter(m => item[m]).map(m => m.toUpperCase()) : undefined
}

export interface ObservedResponse {
  status: number
  headers: Headers | Record<string, string | undefined>
  /** The body parsed as JSON; undefined when it was empty or not JSON. */
  body?: unknown
  /** The body as received. */
  text?: string
}

function headerOf(headers: ObservedResponse['headers'], name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined
  const found = Object.entries(headers as Record<string, string | undefined>).find(([key]) => key.toLowerCase() === name)
  return found?.[1]
}

function describeErrors(validate: ValidateFunction): string {
  return (validate.errors ?? []).slice(0, 6).map(e => `${e.instancePath || '(root)'} ${e.message}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`).join('; ')
}

/**
 * What is wrong with an answer according to the document; empty when nothing is.
 * `url` is the path and query the request went to (a full URL works too).
 */
export function responseProblems(method: string, url: string, response: ObservedResponse): string[] {
  const problems: string[] = []
  const upper = method.toUpperCase()
  const path = new URL(url, 'http://kvarc.invalid').pathname
  const item = openapi.paths?.[path] as Json | undefined
  // HEAD is GET without a body (RFC 9110), unless the document gives it an operation of its own.
  const operation: Json | undefined = item?.[upper.toLowerCase()] ?? (upper === 'HEAD' ? item?.get : undefined)
  const where = operation ? `${upper} ${path} (${operation.operationId})` : `${upper} ${path} (unrouted)`
  const responses: Json = operation ? operation.responses : openapi['x-kvarc-unrouted'].responses
  const documented = responses[String(response.status)]
  if (!documented) return [`${where}: status ${response.status} is not documented (documented: ${Object.keys(responses).join(', ')})`]
  const answer = resolve(documented)

  // An API path never serves a file or a 404 for a method it does not take: that is a 405 with Allow.
  const apiPath = item !== undefined && (path === '/api' || path.startsWith('/api/'))
  if (!operation && apiPath && [200, 304, 403, 404].includes(response.status)) {
    problems.push(`${where}: a method the path does not take must be answered 405, got ${response.status}`)
  }
  if (!operation && apiPath && response.status === 405) {
    const allow = headerOf(response.headers, 'allow')
    const named = (allow ?? '').split(',').map(m => m.trim()).filter(m => m && m !== 'HEAD').sort()
    const expected = documentedMethods(path)!.filter(m => m !== 'HEAD').sort()
    if (named.join(', ') !== expected.join(', ')) problems.push(`${where}: Allow ${JSON.stringify(allow)} does not name the documented methods ${expected.join(', ')}`)
  }

  const headerDocs = Object.fromEntries(Object.entries(answer.headers ?? {}).map(([name, header]) => [name.toLowerCase(), resolve(header as Json)]))
  for (const [name, header] of Object.entries(headerDocs)) {
    const value = headerOf(response.headers, name)
    if (value === undefined) {
      if (header.required) problems.push(`${where} ${response.status}: header ${name} is required but missing`)
      continue
    }
    if (header.schema) {
      const validate = validatorFor(header.schema)
      if (!validate(value)) problems.push(`${where} ${response.status}: header ${name}: ${JSON.stringify(value)} ${describeErrors(validate)}`)
    }
  }
  for (const name of KVARC_HEADERS) {
    if (headerOf(response.headers, name) !== undefined && !headerDocs[name]) problems.push(`${where} ${response.status}: header ${name} is sent but not documented for this answer`)
  }

  const text = response.text ?? (response.body === undefined ? '' : JSON.stringify(response.body))
  const hasBody = upper !== 'HEAD' && text !== ''
  const content = answer.content as Json | undefined
  if (!hasBody) {
    if (content && upper !== 'HEAD') problems.push(`${where} ${response.status}: the answer has no body, the document gives it ${Object.keys(content).join(', ')}`)
    return problems
  }
  if (!content) return [...problems, `${where} ${response.status}: the answer has a body, the document gives it none`]
  const type = (headerOf(response.headers, 'content-type') ?? '').split(';')[0]!.trim().toLowerCase()
  const media = (content[type] ?? content[`${type.split('/')[0]}/*`] ?? content['*/*']) as Json | undefined
  if (!media) return [...problems, `${where} ${response.status}: content type ${JSON.stringify(type)} is not documented (documented: ${Object.keys(content).join(', ')})`]
  if (type === 'application/json') {
    let body = response.body
    if (body === undefined) {
      try { body = JSON.parse(text) } catch { return [...problems, `${where} ${response.status}: the body is not JSON: ${text.slice(0, 200)}`] }
    }
    const validate = validatorFor(media.schema)
    if (!validate(body)) problems.push(`${where} ${response.status}: body ${JSON.stringify(body).slice(0, 300)}: ${describeErrors(validate)}`)
  }
  return problems
}

/** Throws when the answer is not what the document says (every problem in the message). */
export function checkResponse(method: string, url: string, response: ObservedResponse): void {
  const problems = responseProblems(method, url, response)
  if (problems.length) throw new Error(`the answer does not match public/openapi.json:\n- ${problems.join('\n- ')}`)
}

/**
 * What is wrong with how a running system serves the documents: /openapi.json
 * (this document, as JSON), /docs and /docs/ (the rendering) and every file the
 * page and its stylesheet load, each with its content type and the form's
 * Content-Security-Policy. Empty when nothing is.
 */
export async function servedDocsProblems(baseUrl: string, policy: string): Promise<string[]> {
  const problems: string[] = []
  const get = async (path: string) => {
    // Not followed: each path must answer itself (nginx would redirect /docs to /docs/ unless told otherwise).
    const response = await fetch(baseUrl + path, { redirect: 'manual', signal: AbortSignal.timeout(20_000) })
    const bytes = Buffer.from(await response.arrayBuffer())
    const type = response.headers.get('content-type') ?? ''
    if (response.status !== 200) problems.push(`GET ${path}: ${response.status} ${bytes.toString('utf8').slice(0, 200)}`)
    if (response.headers.get('content-security-policy') !== policy) problems.push(`GET ${path}: Content-Security-Policy ${JSON.stringify(response.headers.get('content-security-policy'))}`)
    if (response.headers.get('x-content-type-options') !== 'nosniff') problems.push(`GET ${path}: no X-Content-Type-Options: nosniff`)
    return { response, bytes, type }
  }
  const expectType = (path: string, type: string, pattern: RegExp) => {
    if (!pattern.test(type)) problems.push(`GET ${path}: content-type ${JSON.stringify(type)}, expected ${pattern}`)
  }

  // In parallel: under arc sandbox every request starts a process of its own.
  const [document, ...pages] = await Promise.all(['/openapi.json', '/docs', '/docs/'].map(get))
  expectType('/openapi.json', document!.type, /^application\/json(;|$)/)
  try {
    if (JSON.stringify(JSON.parse(document!.bytes.toString('utf8'))) !== JSON.stringify(openapi)) problems.push('GET /openapi.json: not public/openapi.json')
  } catch {
    problems.push('GET /openapi.json: not JSON')
  }
  problems.push(...responseProblems('GET', '/openapi.json', { status: document!.response.status, headers: document!.response.headers, text: document!.bytes.toString('utf8') }))

  const assets = new Set<string>()
  for (const [i, page] of pages.entries()) {
    const path = i === 0 ? '/docs' : '/docs/'
    expectType(path, page.type, /^text\/html(;|$)/)
    const html = page.bytes.toString('utf8')
    if (!html.includes('swagger-ui-bundle.js')) problems.push(`GET ${path}: not the rendering's page`)
    problems.push(...responseProblems('GET', '/docs', { status: page.response.status, headers: page.response.headers, text: html }))
    for (const [, url] of html.matchAll(/(?:src|href)="([^"]+)"/g)) {
      if (url!.startsWith('/')) assets.add(url!)
      else problems.push(`${path} loads ${url}: only absolute paths of this origin work at both /docs and /docs/`)
    }
  }
  const icons = new Set<string>()
  await Promise.all([...assets].map(async asset => {
    const file = await get(asset)
    expectType(asset, file.type, asset.endsWith('.js') ? /^(text|application)\/javascript(;|$)/ : asset.endsWith('.css') ? /^text\/css(;|$)/ : asset.endsWith('.json') ? /^application\/json(;|$)/ : /^image\/svg\+xml(;|$)/)
    if (!asset.endsWith('.css')) return
    for (const [, icon] of file.bytes.toString('utf8').matchAll(/url\(([^)]+)\)/g)) {
      if (/^["']?data:/.test(icon!)) problems.push(`${asset} loads a data: URL, which img-src 'self' blocks`)
      else icons.add(new URL(icon!.replace(/^["']|["']$/g, ''), `http://kvarc.invalid${asset}`).pathname)
    }
  }))
  // The SVG icons the page shows (the PNG and JPEG ones belong to swagger-ui's unused debug grid).
  await Promise.all([...icons].filter(path => path.endsWith('.svg')).map(async path => {
    expectType(path, (await get(path)).type, /^image\/svg\+xml(;|$)/)
  }))
  return problems
}
