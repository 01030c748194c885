/**
 * POST /api/batch: many writes in one request. Every op is validated before
 * anything is queued (one bad op → 422 naming its index, nothing queued).
 * Not atomic: each op is an ordinary write with its own version, group-
 * committed with the host's other writes. Atomic: one version for all, one
 * message (messages.ts encodeAtomic) applied in one transaction (atomic.ts).
 */
import { PayloadTooLargeError, ValidationError } from './errors.js'
import type { Condition } from './store.js'
import { keyProblem, lifeProblem, valueProblem } from './validate.js'
import { parseVersion } from './version.js'
import type { Life } from './writer.js'

/** At most this many ops in one batch (etcd's and Consul's transactions allow 128). */
export const MAX_BATCH_OPS = 128

export interface BatchOp { index: number, key: string, value: string | null, condition?: Condition, life?: Life }
export interface Batch { ops: BatchOp[], atomic: boolean }

const OP_FIELDS = new Set(['op', 'key', 'value', 'ttl', 'expiresAt', 'ifMatch', 'ifNoneMatch'])

function opCondition(raw: Record<string, unknown>, where: string): Condition | undefined {
  const { ifMatch, ifNoneMatch } = raw
  if (ifMatch !== undefined && ifNoneMatch !== undefined) throw new ValidationError(`${where}: send ifMatch or ifNoneMatch, not both`)
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== '*') throw new ValidationError(`${where}: ifNoneMatch must be "*" (absent or deleted)`)
    return { kind: 'absent' }
  }
  if (ifMatch === undefined) return undefined
  if (ifMatch === '*') return { kind: 'present' }
  const version = typeof ifMatch === 'string' ? parseVersion(ifMatch.replace(/^"(.*)"$/, '$1')) : undefined
  if (version === undefined) throw new ValidationError(`${where}: ifMatch must be "*" or a version (the ETag of GET /api, e.g. "1234")`)
  return { kind: 'match', version }
}

/** The batch of a request body, every op checked; a ValidationError names the first bad op by index. */
export function parseBatch(body: Record<string, unknown>): Batch {
  for (const name of Object.keys(body)) {
    if (name !== 'ops' && name !== 'atomic') throw new ValidationError(`unknown field ${JSON.stringify(name)}: a batch is {"ops":[…],"atomic":false|true}`)
  }
  const { ops, atomic } = body
  if (atomic !== undefined && typeof atomic !== 'boolean') throw new ValidationError('atomic must be true or false')
  if (!Array.isArray(ops) || ops.length === 0) throw new ValidationError('ops must be a non-empty array of {"op":"put"|"delete","key",…}')
  if (ops.length > MAX_BATCH_OPS) throw new ValidationError(`a batch holds at most ${MAX_BATCH_OPS} ops, got ${ops.length}`)
  const seen = new Map<string, number>()
  const parsed = ops.map((raw, index): BatchOp => {
    const where = `ops[${index}]`
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ValidationError(`${where}: must be an object {"op":"put"|"delete","key",…}`)
    const op = raw as Record<string, unknown>
    for (const name of Object.keys(op)) if (!OP_FIELDS.has(name)) throw new ValidationError(`${where}: unknown field ${JSON.stringify(name)}`)
    if (op.op !== 'put' && op.op !== 'delete') throw new ValidationError(`${where}: op must be "put" or "delete"`)
    const badKey = keyProblem(op.key)
    if (badKey) throw new ValidationError(`${where}: ${badKey.message}`)
    const key = op.key as string
    const twice = seen.get(key)
    if (twice !== undefined) throw new ValidationError(`${where}: key ${JSON.stringify(key)} is already written by ops[${twice}]; a batch writes each key once`)
    seen.set(key, index)
    const condition = opCondition(op, where)
    if (op.op === 'delete') {
      if ('value' in op || 'ttl' in op || 'expiresAt' in op) throw new ValidationError(`${where}: a delete takes no value, ttl or expiresAt`)
      return { index, key, value: null, ...(condition ? { condition } : {}) }
    }
    if (!('value' in op)) throw new ValidationError(`${where}: a put needs a value`)
    const badValue = valueProblem(op.value)
    if (badValue) throw badValue.tooLarge ? new PayloadTooLargeError(`${where}: ${badValue.message}`) : new ValidationError(`${where}: ${badValue.message}`)
    const life = lifeProblem(op)
    if ('message' in life) throw new ValidationError(`${where}: ${life.message}`)
    return { index, key, value: op.value as string, ...(condition ? { condition } : {}), ...(life.life ? { life: life.life } : {}) }
  })
  return { ops: parsed, atomic: atomic === true }
}
