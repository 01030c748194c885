/**
 * The queue message format, shared by the publishers (PUT/DELETE) and the
 * consumers. JSON: {"key","value","version"} on add_key, {"key","version"} on
 * del_key; the version is a decimal string. Consumers re-validate everything: a
 * message that can never apply is a `PoisonMessageError`.
 */
import { PoisonMessageError } from './errors.js'
import type { Write } from './store.js'
import { keyProblem, valueProblem } from './validate.js'
import { parseVersion } from './version.js'

export type WriteKind = 'put' | 'delete'

export function encodeWrite(key: string, value: string | null, version: bigint): Buffer {
  return Buffer.from(JSON.stringify(value === null ? { key, version: version.toString() } : { key, value, version: version.toString() }))
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export function decodeWrite(data: Uint8Array, kind: WriteKind): Write {
  let parsed: unknown
  try {
    parsed = JSON.parse(utf8.decode(data))
  } catch {
    throw new PoisonMessageError('message body is not UTF-8 JSON')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PoisonMessageError('message body is not a JSON object')
  const { key, value, version } = parsed as Record<string, unknown>
  const badKey = keyProblem(key)
  if (badKey) throw new PoisonMessageError(badKey.message)
  const parsedVersion = parseVersion(version)
  if (parsedVersion === undefined) throw new PoisonMessageError('version must be a decimal string of a positive 63-bit integer')
  if (kind === 'delete') return { key: key as string, value: null, version: parsedVersion, deleted: true }
  const badValue = valueProblem(value)
  if (badValue) throw new PoisonMessageError(badValue.message)
  return { key: key as string, value: value as string, version: parsedVersion, deleted: false }
}
