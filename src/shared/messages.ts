/**
 * The queue message format, shared by the publishers (PUT/DELETE) and the
 * consumers. A message carries one write as a JSON object — {"key","value",
 * "version"} on add_key, {"key","version"} on del_key, the version a decimal
 * string — or several writes as a JSON array of such objects (writes that
 * reached one host in the same instant, coalesced: writer.ts). Consumers
 * re-validate everything, so nothing that can never apply is
 * silently dropped: a bad message, or a bad write in an array, is dead-lettered.
 *
 * A conditional write carries its version inside its condition and has no
 * top-level "version": {"key","value","conditional":{"version","ifMatch":V|"*"}}
 * or {…,"conditional":{"version","ifNoneMatch":"*"}}. A consumer that predates
 * conditions finds no version and dead-letters it, so it can never apply a
 * conditional write unconditionally.
 *
 * An atomic batch (POST /api/batch with "atomic": true) is one message on
 * add_key: {"atomic":{"version","ops":[{"key","value"|"delete":true,
 * "ifMatch"?,"ifNoneMatch"?,"expiresAt"?},…]}}: puts and deletes together, one
 * version, never split across queues. It has no top-level key, so a consumer
 * that predates batches dead-letters it whole, never applying part of it.
 */
import { PoisonMessageError } from './errors.js'
import type { Condition, Write } from './store.js'
import { keyProblem, valueProblem } from './validate.js'
import { parseVersion } from './version.js'

export type WriteKind = 'put' | 'delete'

/** One write as the API stamps it; `value` null for a DELETE; `expiresAt` in epoch seconds. */
export interface QueuedWrite { key: string, value: string | null, version: bigint, condition?: Condition, expiresAt?: number | null }

function toJson({ key, value, version, condition, expiresAt }: QueuedWrite): object {
  const body: Record<string, unknown> = { key }
  if (value !== null) body.value = value
  if (expiresAt !== null && expiresAt !== undefined) body.expiresAt = expiresAt
  if (condition === undefined) body.version = version.toString()
  else body.conditional = { version: version.toString(), ...conditionToJson(condition) }
  return body
}

function conditionToJson(condition: Condition): Record<string, string> {
  switch (condition.kind) {
    case 'match': return { ifMatch: condition.version.toString() }
    case 'present': return { ifMatch: '*' }
    case 'absent': return { ifNoneMatch: '*' }
  }
}

/** One message for these writes: the object for a single write, an array for several. */
export function encodeWrites(writes: readonly QueuedWrite[]): Buffer {
  if (writes.length === 0) throw new RangeError('a message carries at least one write')
  return Buffer.from(JSON.stringify(writes.length === 1 ? toJson(writes[0]!) : writes.map(toJson)))
}

export function encodeWrite(key: string, value: string | null, version: bigint, condition?: Condition): Buffer {
  return encodeWrites([{ key, value, version, condition }])
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A part of a message that can never apply: the bytes to dead-letter and why. */
export interface PoisonPart { body: Buffer, reason: string }

/** An atomic batch: every op at one version, applied all together or not at all. */
export interface AtomicBatch { version: bigint, writes: Write[] }

/** The message of an atomic batch; `writes` share `version`, one per key. */
export function encodeAtomic(version: bigint, writes: readonly QueuedWrite[]): Buffer {
  const ops = writes.map(({ key, value, condition, expiresAt }) => {
    const op: Record<string, unknown> = value === null ? { key, delete: true } : { key, value }
    if (condition) Object.assign(op, conditionToJson(condition))
    if (expiresAt !== null && expiresAt !== undefined) op.expiresAt = expiresAt
    return op
  })
  return Buffer.from(JSON.stringify({ atomic: { version: version.toString(), ops } }))
}

function toAtomic(value: unknown): AtomicBatch {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new PoisonMessageError('"atomic" is not a JSON object')
  const { version, ops } = value as Record<string, unknown>
  const parsedVersion = parseVersion(version)
  if (parsedVersion === undefined) throw new PoisonMessageError('atomic batch: version must be a decimal string of a positive 63-bit integer')
  if (!Array.isArray(ops) || ops.length === 0) throw new PoisonMessageError('atomic batch: ops must be a non-empty array')
  const keys = new Set<string>()
  const writes = ops.map((op, i) => {
    if (op === null || typeof op !== 'object' || Array.isArray(op)) throw new PoisonMessageError(`atomic batch op ${i}: not a JSON object`)
    const { delete: isDelete, ifMatch, ifNoneMatch, ...rest } = op as Record<string, unknown>
    // An op is a write of the batch's version, its condition in the conditional form.
    const asWrite: Record<string, unknown> = { ...rest }
    if (ifMatch !== undefined || ifNoneMatch !== undefined) asWrite.conditional = { version: version as string, ifMatch, ifNoneMatch }
    else asWrite.version = version
    const write = toWrite(asWrite, isDelete === true ? 'delete' : 'put', `atomic batch op ${i}`)
    if (keys.has(write.key)) throw new PoisonMessageError(`atomic batch op ${i}: key given twice in one batch`)
    keys.add(write.key)
    return write
  })
  return { version: parsedVersion, writes }
}

/**
 * The writes of one message, and its parts that can never apply. A body that
 * is not a JSON object or array is poison whole; in an array (writes that
 * different clients sent at once, coalesced) each bad entry is poison alone,
 * and the valid writes beside it still apply. An atomic batch comes alone, and
 * is poison whole when any op is.
 */
export function decodeMessage(data: Uint8Array, kind: WriteKind): { writes: Write[], poison: PoisonPart[], atomic: AtomicBatch[] } {
  let parsed: unknown
  try {
    parsed = JSON.parse(utf8.decode(data))
  } catch {
    return { writes: [], atomic: [], poison: [{ body: Buffer.from(data), reason: 'message body is not UTF-8 JSON' }] }
  }
  const whole = (reason: string) => ({ writes: [], atomic: [], poison: [{ body: Buffer.from(data), reason }] })
  if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && 'atomic' in parsed) {
    try {
      return { writes: [], poison: [], atomic: [toAtomic((parsed as { atomic: unknown }).atomic)] }
    } catch (error) {
      if (error instanceof PoisonMessageError) return whole(error.message)
      throw error
    }
  }
  if (!Array.isArray(parsed)) {
    try {
      return { writes: [toWrite(parsed, kind, 'message body')], poison: [], atomic: [] }
    } catch (error) {
      if (error instanceof PoisonMessageError) return whole(error.message)
      throw error
    }
  }
  if (parsed.length === 0) return whole('message body is an empty array: no write in it')
  const writes: Write[] = []
  const poison: PoisonPart[] = []
  parsed.forEach((entry, i) => {
    try {
      writes.push(toWrite(entry, kind, `write ${i + 1} of ${parsed.length}`))
    } catch (error) {
      if (!(error instanceof PoisonMessageError)) throw error
      poison.push({ body: Buffer.from(JSON.stringify(entry) ?? 'null'), reason: error.message })
    }
  })
  return { writes, poison, atomic: [] }
}

/** The writes of one message, or a PoisonMessageError saying why (part of) it can never apply. */
export function decodeWrites(data: Uint8Array, kind: WriteKind): Write[] {
  const { writes, poison } = decodeMessage(data, kind)
  if (poison.length > 0) throw new PoisonMessageError(poison[0]!.reason)
  return writes
}

function toWrite(parsed: unknown, kind: WriteKind, where: string): Write {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PoisonMessageError(`${where} is not a JSON object`)
  const { key, value, version, conditional, expiresAt } = parsed as Record<string, unknown>
  const problem = (message: string) => new PoisonMessageError(where === 'message body' ? message : `${where}: ${message}`)
  const badKey = keyProblem(key)
  if (badKey) throw problem(badKey.message)
  let parsedVersion: bigint | undefined
  let condition: Condition | undefined
  if (conditional === undefined) {
    parsedVersion = parseVersion(version)
  } else {
    if (version !== undefined) throw problem('a conditional write carries its version inside "conditional" only')
    ;({ version: parsedVersion, condition } = toCondition(conditional, problem))
  }
  if (parsedVersion === undefined) throw problem('version must be a decimal string of a positive 63-bit integer')
  if (condition?.kind === 'match' && condition.version >= parsedVersion) throw problem('a conditional write\'s version must be greater than the version it names')
  const write: Write = kind === 'delete'
    ? { key: key as string, value: null, version: parsedVersion, deleted: true }
    : { key: key as string, value: value as string, version: parsedVersion, deleted: false }
  if (kind === 'put') {
    const badValue = valueProblem(value)
    if (badValue) throw problem(badValue.message)
  }
  if (expiresAt !== undefined) {
    if (kind === 'delete' || !Number.isSafeInteger(expiresAt) || (expiresAt as number) < 1) throw problem('expiresAt must be epoch seconds, on a PUT only')
    write.expiresAt = expiresAt as number
  }
  if (condition) write.condition = condition
  return write
}

function toCondition(conditional: unknown, problem: (message: string) => Error): { version: bigint | undefined, condition: Condition } {
  if (conditional === null || typeof conditional !== 'object' || Array.isArray(conditional)) throw problem('"conditional" is not a JSON object')
  const { version, ifMatch, ifNoneMatch } = conditional as Record<string, unknown>
  if (ifMatch !== undefined && ifNoneMatch !== undefined) throw problem('a write has one condition: ifMatch or ifNoneMatch')
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== '*') throw problem('ifNoneMatch must be "*"')
    return { version: parseVersion(version), condition: { kind: 'absent' } }
  }
  if (ifMatch === '*') return { version: parseVersion(version), condition: { kind: 'present' } }
  const expected = parseVersion(ifMatch)
  if (expected === undefined) throw problem('ifMatch must be "*" or a version (a decimal string)')
  return { version: parseVersion(version), condition: { kind: 'match', version: expected } }
}
