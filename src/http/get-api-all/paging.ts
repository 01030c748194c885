/** Paging parameters of GET /api/all: `limit` and the opaque `cursor`. */
import { ValidationError } from '../../shared/errors.js'
import { keyProblem } from '../../shared/validate.js'

export function parseLimit(text: string | undefined, fallback: number, max: number): number {
  if (text === undefined) return fallback
  if (!/^[0-9]{1,7}$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new ValidationError(`limit must be an integer from 1 to ${max}`)
  }
  return Number(text)
}

/** A cursor is the last key of the previous page, base64url: opaque to clients, exact for any key. */
export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url')
}

export function decodeCursor(cursor: string): string {
  const invalid = new ValidationError('cursor is not valid: pass the "next" value of the previous page unchanged')
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid
  let key: string
  try {
    key = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(cursor, 'base64url'))
  } catch {
    throw invalid
  }
  if (keyProblem(key) || encodeCursor(key) !== cursor) throw invalid
  return key
}
