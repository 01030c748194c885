/**
 * API tokens in the record (kv_tokens): create (the token is shown once, only
 * its hash is stored), list, revoke. `npm run token` talks to PostgreSQL
 * directly, so it can make the first admin token before any exists.
 */
import { newToken, parseRules, type Access, type Rule } from '../src/shared/auth.js'
import type { Queryable } from '../src/shared/postgres.js'

export interface TokenSummary { name: string, id: string, rules: Rule[], admin: boolean, createdAt: string }

export const INSERT_TOKEN = 'INSERT INTO kv_tokens (id, name, secret_hash, rules, admin) VALUES ($1, $2, $3, $4, $5)'
export const LIST_TOKENS = `SELECT id, name, rules, admin, created_at FROM kv_tokens WHERE revoked_at IS NULL ORDER BY name`
export const REVOKE_TOKEN = 'UPDATE kv_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING id'

export class TokenError extends Error {
  override name = 'TokenError'
}

/** Creates a token; resolves with the token itself, which is never stored and cannot be shown again. */
export async function createToken(db: Queryable, options: { name: string, rules: Rule[], admin: boolean }): Promise<{ token: string, id: string }> {
  if (!/^[A-Za-z0-9_.:@-]{1,100}$/.test(options.name)) throw new TokenError('a token name is 1 to 100 letters, digits or _ . : @ -')
  if (options.rules.length === 0 && !options.admin) throw new TokenError('a token needs at least one rule (--read, --write, --readwrite, --deny, --all) or --admin')
  const fresh = newToken()
  try {
    await db.query(INSERT_TOKEN, [fresh.id, options.name, fresh.secretHash, JSON.stringify(options.rules), options.admin])
  } catch (error) {
    if ((error as { code?: string }).code === '23505') throw new TokenError(`a token named ${options.name} exists: revoke it first or choose another name`)
    throw error
  }
  return { token: fresh.token, id: fresh.id }
}

export async function listTokens(db: Queryable): Promise<TokenSummary[]> {
  const { rows } = await db.query<{ id: string, name: string, rules: unknown, admin: boolean, created_at: Date }>(LIST_TOKENS)
  return rows.map(r => ({ name: r.name, id: r.id, rules: parseRules(r.rules), admin: r.admin, createdAt: r.created_at.toISOString() }))
}

/** Revokes the live token of that name; false when there is none. */
export async function revokeToken(db: Queryable, name: string): Promise<boolean> {
  const { rowCount } = await db.query(REVOKE_TOKEN, [name])
  return (rowCount ?? 0) > 0
}

/** Rules from repeated flags (order does not matter: the longest prefix decides). `--all` is readwrite on every key. */
export function rulesFromFlags(flags: Partial<Record<Access | 'all', (string | boolean)[] | string | boolean>>): Rule[] {
  const rules: Rule[] = []
  const list = (v: unknown) => (v === undefined ? [] : Array.isArray(v) ? v : [v])
  for (const access of ['read', 'write', 'readwrite', 'deny'] as const) {
    for (const prefix of list(flags[access])) {
      if (typeof prefix !== 'string') throw new TokenError(`--${access} needs a key prefix ("" for every key)`)
      if (prefix.includes('\u0000') || !prefix.isWellFormed()) throw new TokenError(`--${access} prefix must be valid Unicode without NUL`)
      rules.push({ prefix, access })
    }
  }
  if (list(flags.all).length > 0) rules.push({ prefix: '', access: 'readwrite' })
  return rules
}
