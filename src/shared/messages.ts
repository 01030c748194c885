/**
 * The queue message format, shared by the publishers (PUT/DELETE) and the
 * consumers. A message carries one write as a JSON object — {"key","value",
 * "version"} on add_key, {"key","version"} on del_key, the version a decimal
 * string — or several writes as a JSON array of such objects (writes that
 * reached one host in the same instant, coalesced: writer.ts). Consumers
 * re-validate everything: a message that can never apply, in whole or in part,
 * is a `PoisonMessageError` and is dead-lettered whole, so nothing in it is
 * silently dropped.
 */
import { PoisonMessageError } from './errors.js'
import type { Write } from './store.js'
import { keyProblem, valueProblem } from './validate.js'
import { parseVersion } from './version.js'

export type WriteKind = 'put' | 'delete'

/** One write as the API stamps it; `value` null for a DELETE. */
export interface QueuedWrite { key: string, value: string | null, version: bigint }

function toJson({ key, value, version }: QueuedWrite): object {
  return value === null ? { key, version: version.toString() } : { key, value, version: version.toString() }
}

/** One message for these writes: the object for a single write, an array for several. */
export function encodeWrites(writes: readonly QueuedWrite[]): Buffer {
  if (writes.length === 0) throw new RangeError('a message carries at least one write')
  return Buffer.from(JSON.stringify(writes.length === 1 ? toJson(writes[0]!) : writes.map(toJson)))
}

export function encodeWrite(key: string, value: string | null, version: bigint): Buffer {
  return encodeWrites([{ key, value, version }])
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** The writes of one message, or a PoisonMessageError saying why it can never apply. */
export function decodeWrites(data: Uint8Array, kind: WriteKind): Write[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(utf8.decode(data))
  } catch {
    throw new PoisonMessageError('message body is not UTF-8 JSON')
  }
  if (!Array.isArray(parsed)) return [toWrite(parsed, kind, 'message body')]
  if (parsed.length === 0) throw new PoisonMessageError('message body is an empty array: no write in it')
  return parsed.map((entry, i) => toWrite(entry, kind, `write ${i + 1} of ${parsed.length}`))
}

function toWrite(parsed: unknown, kind: WriteKind, where: string): Write {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PoisonMessageError(`${where} is not a JSON object`)
  const { key, value, version } = parsed as Record<string, unknown>
  const problem = (message: string) => new PoisonMessageError(where === 'message body' ? message : `${where}: ${message}`)
  const badKey = keyProblem(key)
  if (badKey) throw problem(badKey.message)
  const parsedVersion = parseVersion(version)
  if (parsedVersion === undefined) throw problem('version must be a decimal string of a positive 63-bit integer')
  if (kind === 'delete') return { key: key as string, value: null, version: parsedVersion, deleted: true }
  const badValue = valueProblem(value)
  if (badValue) throw problem(badValue.message)
  return { key: key as string, value: value as string, version: parsedVersion, deleted: false }
}
