/**
 * The request headers and parameters of write outcomes: If-Match and
 * If-None-Match (RFC 9110 preconditions, on PUT and DELETE), Prefer: wait
 * (RFC 7240), and the `wait` / `minVersion` query parameters. Each is parsed
 * strictly: anything kvarc cannot honour exactly is a 422 that says why,
 * never silently ignored.
 */
import { ValidationError } from './errors.js'
import type { HttpEvent } from './http.js'
import type { Condition } from './store.js'
import { parseVersion } from './version.js'

/** The longest a request may wait: below app.arc's function timeout (15 s) and nginx's proxy timeout (30 s). */
export const MAX_WAIT_SECONDS = 10

function header(event: HttpEvent, name: string): string | undefined {
  const value = event.headers?.[name]
  return value === undefined ? undefined : value.trim()
}

/** An ETag as kvarc sends it: a version in double quotes. A bare version is taken too (curl users forget the quotes). */
function parseEtag(text: string): bigint | undefined {
  const inner = /^"([^"]*)"$/.exec(text)?.[1] ?? text
  return parseVersion(inner)
}

/** The write's condition, from If-Match / If-None-Match; undefined for a plain write. */
export function parseCondition(event: HttpEvent): Condition | undefined {
  const ifMatch = header(event, 'if-match')
  const ifNoneMatch = header(event, 'if-none-match')
  if (ifMatch !== undefined && ifNoneMatch !== undefined) throw new ValidationError('send If-Match or If-None-Match, not both')
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== '*') throw new ValidationError('If-None-Match on a write must be * (create only if the key is absent or deleted)')
    return { kind: 'absent' }
  }
  if (ifMatch === undefined) return undefined
  if (ifMatch === '*') return { kind: 'present' }
  if (ifMatch.includes(',')) throw new ValidationError('If-Match takes one ETag: the version the key must hold, e.g. If-Match: "1234"')
  if (ifMatch.startsWith('W/')) throw new ValidationError('If-Match needs a strong ETag: kvarc\'s ETags are versions in quotes, e.g. "1234"')
  const version = parseEtag(ifMatch)
  if (version === undefined) throw new ValidationError('If-Match must be * or an ETag from GET /api (a version in quotes, e.g. "1234")')
  return { kind: 'match', version }
}

/**
 * Seconds of `Prefer: wait=S`, at most MAX_WAIT_SECONDS (a longer wait is
 * shortened, as RFC 7240 lets a server do; Preference-Applied says how long);
 * undefined without it. Other preferences are ignored, as the RFC says.
 */
export function parsePreferWait(event: HttpEvent): number | undefined {
  const prefer = header(event, 'prefer')
  if (prefer === undefined) return undefined
  for (const part of prefer.split(',')) {
    const match = /^\s*wait\s*=\s*"?([^";\s]*)"?\s*(;.*)?$/i.exec(part)
    if (!match) continue
    const text = match[1] as string
    if (!/^[0-9]{1,6}$/.test(text)) throw new ValidationError(`Prefer: wait must be whole seconds (0 to ${MAX_WAIT_SECONDS}), got ${JSON.stringify(text)}`)
    return Math.min(Number(text), MAX_WAIT_SECONDS)
  }
  return undefined
}

/** The `wait` query parameter: whole seconds from 0 to MAX_WAIT_SECONDS; 0 when absent. */
export function parseWaitParam(params: Map<string, string>): number {
  const text = params.get('wait')
  if (text === undefined) return 0
  if (!/^[0-9]{1,2}$/.test(text) || Number(text) > MAX_WAIT_SECONDS) {
    throw new ValidationError(`query parameter "wait" must be whole seconds from 0 to ${MAX_WAIT_SECONDS}`)
  }
  return Number(text)
}

/** A version query parameter (`version`, `minVersion`): a decimal string as PUT and DELETE answer it. */
export function parseVersionParam(params: Map<string, string>, name: string, required: true): bigint
export function parseVersionParam(params: Map<string, string>, name: string, required: false): bigint | undefined
export function parseVersionParam(params: Map<string, string>, name: string, required: boolean): bigint | undefined {
  const text = params.get(name)
  if (text === undefined) {
    if (required) throw new ValidationError(`query parameter "${name}" is required: the version a PUT or DELETE answered`)
    return undefined
  }
  const version = parseVersion(text)
  if (version === undefined) throw new ValidationError(`query parameter "${name}" must be a version: a positive decimal integer below 2^63, as PUT and DELETE answer it`)
  return version
}

/** The receipt of a write, as a path a client can GET (the Location of a 202). */
export function receiptPath(key: string, version: string): string {
  return `/api/writes?key=${encodeURIComponent(key)}&version=${version}`
}
