/**
 * Input validation for keys and values, shared by the HTTP functions (422/413
 * answers) and the consumers (which must re-check: a queue can be fed by anyone).
 */
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './limits.js'

/** Why a key or value is invalid, or undefined when it is valid. `tooLarge` marks the 413 cases. */
export interface Problem { message: string, tooLarge?: boolean }

function textProblem(what: string, text: unknown, maxBytes: number, allowEmpty: boolean): Problem | undefined {
  if (typeof text !== 'string') {
    return { message: `${what} must be a string, got ${text === null ? 'null' : Array.isArray(text) ? 'array' : typeof text}` }
  }
  if (!allowEmpty && text.length === 0) return { message: `${what} must not be empty` }
  // Lone surrogates cannot be stored as UTF-8: PostgreSQL and Redis would silently alter them.
  if (!text.isWellFormed()) return { message: `${what} is not valid Unicode (it contains a lone surrogate)` }
  // PostgreSQL `text` cannot hold NUL.
  if (text.includes('\u0000')) return { message: `${what} must not contain NUL characters` }
  // Cheap upper bound first: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (text.length * 3 > maxBytes && Buffer.byteLength(text, 'utf8') > maxBytes) {
    return { message: `${what} is larger than ${maxBytes} bytes of UTF-8`, tooLarge: what === 'value' }
  }
  return undefined
}

export function keyProblem(key: unknown): Problem | undefined {
  return textProblem('key', key, MAX_KEY_BYTES, false)
}

export function valueProblem(value: unknown): Problem | undefined {
  return textProblem('value', value, MAX_VALUE_BYTES, true)
}

/** The longest life a PUT may ask for: a year, in seconds. */
export const MAX_TTL_SECONDS = 31_536_000

/**
 * A PUT's `ttl` (seconds) or `expiresAt` (epoch seconds), or undefined when it
 * has neither (the key lives until deleted). An expiresAt must lie within the
 * same year a ttl may reach. Returns the problem's message, or the life.
 */
export function lifeProblem(body: Record<string, unknown>, now = Date.now()): { message: string } | { life?: { ttl: number } | { at: number } } {
  const hasTtl = 'ttl' in body
  const hasAt = 'expiresAt' in body
  if (hasTtl && hasAt) return { message: 'send "ttl" or "expiresAt", not both' }
  if (hasTtl) {
    const ttl = body.ttl
    if (!Number.isInteger(ttl) || (ttl as number) < 1 || (ttl as number) > MAX_TTL_SECONDS) return { message: `ttl must be whole seconds from 1 to ${MAX_TTL_SECONDS} (a year)` }
    return { life: { ttl: ttl as number } }
  }
  if (hasAt) {
    const at = body.expiresAt
    const nowSeconds = Math.floor(now / 1000)
    if (!Number.isInteger(at) || (at as number) <= nowSeconds || (at as number) > nowSeconds + MAX_TTL_SECONDS) {
      return { message: `expiresAt must be epoch seconds after now and at most a year ahead (${nowSeconds + 1} to ${nowSeconds + MAX_TTL_SECONDS} now)` }
    }
    return { life: { at: at as number } }
  }
  return {}
}
