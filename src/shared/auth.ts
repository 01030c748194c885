/**
 * Bearer tokens (RFC 6750) with per-prefix scopes. Checked in the functions'
 * shared code, so sandbox, the warm platform and Lambda decide identically.
 *
 * A token is `kvarc_<id>_<secret>`: the id finds its row, the secret (32
 * random bytes) is stored only as its SHA-256 and compared in constant time.
 * A token's rules are prefixes with an access: the longest prefix that matches
 * the key decides, and at equal length `deny` beats an allow. Prefixes are
 * plain string prefixes: `user:1` also matches `user:10`; end a prefix with a
 * delimiter (`user:1:`) to mean one user's keys.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { HttpError } from './errors.js'
import type { HttpEvent } from './http.js'
import type { Queryable } from './postgres.js'
import { prefixUpperBound } from './store.js'

export type Access = 'read' | 'write' | 'readwrite' | 'deny'
export interface Rule { prefix: string, access: Access }
export type Need = 'read' | 'write'

/** Who is asking: a token's name, rules and admin flag. */
export interface Principal { name: string, rules: readonly Rule[], admin: boolean }

const ACCESSES: readonly Access[] = ['read', 'write', 'readwrite', 'deny']

/** The rule that decides for `key`: the longest matching prefix, deny first at equal length. */
function decidingRule(rules: readonly Rule[], key: string): Rule | undefined {
  let best: Rule | undefined
  for (const rule of rules) {
    if (!key.startsWith(rule.prefix)) continue
    if (!best || rule.prefix.length > best.prefix.length || (rule.prefix.length === best.prefix.length && rule.access === 'deny')) best = rule
  }
  return best
}

function grants(access: Access | undefined, need: Need): boolean {
  return access === 'readwrite' || access === need
}

/** Whether the rules let `need` happen to `key`. No matching rule: no access. */
export function allows(rules: readonly Rule[], key: string, need: Need): boolean {
  return grants(decidingRule(rules, key)?.access, need)
}

/** A range of keys [from, to) in byte order; `to` null: to the end. */
export interface KeyRange { from: string, to: string | null }

/**
 * The ranges of keys within `prefix` the rules let the token read, in key
 * order. Between two consecutive rule boundaries (each rule's prefix and the
 * end of its range) the same rules match every key, so each elementary
 * range is wholly readable or not.
 */
export function readableRanges(rules: readonly Rule[], prefix: string): KeyRange[] {
  const lo = prefix
  const hi = prefixUpperBound(prefix)
  const inside = (b: string) => b > lo && (hi === null || b < hi)
  const bounds = new Set<string>()
  for (const rule of rules) {
    if (inside(rule.prefix)) bounds.add(rule.prefix)
    const upper = prefixUpperBound(rule.prefix)
    if (upper !== null && inside(upper)) bounds.add(upper)
  }
  const points = [lo, ...[...bounds].sort(byCodePoint)]
  const ranges: KeyRange[] = []
  points.forEach((from, i) => {
    const to = i + 1 < points.length ? points[i + 1]! : hi
    if (!allows(rules, from, 'read')) return
    const last = ranges.at(-1)
    if (last && last.to === from) last.to = to
    else ranges.push({ from, to })
  })
  return ranges
}

/** Code point order, which is PostgreSQL's "C" collation (UTF-8 byte order) and the listing's. */
function byCodePoint(a: string, b: string): number {
  const x = [...a]
  const y = [...b]
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i]!.codePointAt(0) as number) - (y[i]!.codePointAt(0) as number)
    if (d !== 0) return d
  }
  return x.length - y.length
}

/** Parses a rule list's JSON (from the token table); throws on anything else. */
export function parseRules(value: unknown): Rule[] {
  if (!Array.isArray(value)) throw new TypeError('rules must be an array')
  return value.map(r => {
    const { prefix, access } = (r ?? {}) as Record<string, unknown>
    if (typeof prefix !== 'string' || !ACCESSES.includes(access as Access)) throw new TypeError(`bad rule ${JSON.stringify(r)}`)
    return { prefix, access: access as Access }
  })
}

// ---- tokens -------------------------------------------------------------

const TOKEN = /^kvarc_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/

export interface NewToken { id: string, secret: string, token: string, secretHash: Buffer }

/** A fresh token: 64-bit id, 256-bit secret. Only the hash is ever stored. */
export function newToken(): NewToken {
  const id = randomBytes(8).toString('hex')
  const secret = randomBytes(32).toString('base64url')
  return { id, secret, token: `kvarc_${id}_${secret}`, secretHash: hashSecret(secret) }
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest()
}

export const READ_TOKEN = 'SELECT name, secret_hash, rules, admin FROM kv_tokens WHERE id = $1 AND revoked_at IS NULL'

interface Cached { principal: Principal | undefined, hash: Buffer | undefined, at: number }

/**
 * Verifies tokens against the token table, each look-up cached for `ttlMs`:
 * a revoked token stops working within that long. The cache is bounded, and
 * holds unknown ids too, so a flood of made-up tokens does not each cost a query.
 */
export class TokenVerifier {
  private readonly cache = new Map<string, Cached>()
  private static readonly DUMMY = hashSecret('')

  constructor(
    private readonly db: () => Promise<Queryable>,
    readonly ttlMs = 5000,
    private readonly now: () => number = Date.now,
    private readonly maxEntries = 10_000,
  ) {}

  /** The token's principal, or undefined when it is malformed, unknown, revoked or wrong. */
  async verify(token: string): Promise<Principal | undefined> {
    const match = TOKEN.exec(token)
    if (!match) return undefined
    const [, id, secret] = match as unknown as [string, string, string]
    let entry = this.cache.get(id)
    if (!entry || this.now() - entry.at >= this.ttlMs) {
      entry = await this.load(id)
      if (this.cache.size >= this.maxEntries) this.cache.delete(this.cache.keys().next().value as string)
      this.cache.set(id, entry)
    }
    // Compared in constant time, against a dummy when the id is unknown, so timing tells nothing.
    const same = timingSafeEqual(hashSecret(secret), entry.hash ?? TokenVerifier.DUMMY)
    return same && entry.hash ? entry.principal : undefined
  }

  private async load(id: string): Promise<Cached> {
    const { rows } = await (await this.db()).query<{ name: string, secret_hash: Buffer, rules: unknown, admin: boolean }>({ name: 'kvarc-read-token', text: READ_TOKEN, values: [id] })
    const row = rows[0]
    if (!row) return { principal: undefined, hash: undefined, at: this.now() }
    return { principal: { name: row.name, rules: parseRules(row.rules), admin: row.admin }, hash: row.secret_hash, at: this.now() }
  }
}

// ---- the check every route makes -----------------------------------------

/** 401: no token, or one that is not valid (RFC 6750: WWW-Authenticate names the scheme, and the error when a token was sent). */
export class UnauthorizedError extends HttpError {
  override name = 'UnauthorizedError'
  constructor(message: string, tokenSent: boolean) {
    super(401, message, { headers: { 'www-authenticate': tokenSent ? 'Bearer realm="kvarc", error="invalid_token"' : 'Bearer realm="kvarc"' } })
  }
}

/** 403: a valid token whose scopes do not allow this. */
export class ForbiddenError extends HttpError {
  override name = 'ForbiddenError'
  constructor(message: string) {
    super(403, message, { headers: { 'www-authenticate': 'Bearer realm="kvarc", error="insufficient_scope"' } })
  }
}

export interface AuthDeps {
  /** 'off': every request is allowed (loopback development); 'required': a valid token is. */
  mode: 'required' | 'off'
  tokens: TokenVerifier
}

/** Everything: what auth off means. */
export const EVERYONE: Principal = Object.freeze({ name: 'anyone (auth off)', rules: Object.freeze([{ prefix: '', access: 'readwrite' as const }]), admin: true })

/** The request's principal; 401 when auth is required and the token is missing or not valid. */
export async function authenticate(deps: AuthDeps, event: HttpEvent): Promise<Principal> {
  if (deps.mode === 'off') return EVERYONE
  const header = event.headers?.authorization
  if (header === undefined || header.trim() === '') throw new UnauthorizedError('authentication required: send Authorization: Bearer <token> (npm run token -- create)', false)
  const match = /^Bearer +(\S+)\s*$/i.exec(header)
  if (!match) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"', true)
  let principal: Principal | undefined
  try {
    principal = await deps.tokens.verify(match[1] as string)
  } catch (error) {
    throw new HttpError(503, 'the token could not be checked: the database is unavailable; retry shortly', { cause: error, headers: { 'retry-after': '1' } })
  }
  if (!principal) throw new UnauthorizedError('the token is not valid (unknown, revoked or malformed)', true)
  return principal
}

/** 403 unless the principal may `need` the key. */
export function requireAccess(principal: Principal, key: string, need: Need): void {
  if (!allows(principal.rules, key, need)) throw new ForbiddenError(`token "${principal.name}" may not ${need} this key`)
}
