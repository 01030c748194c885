/**
 * The API side of write outcomes, shared by PUT and DELETE: a conditional
 * write the cache already proves hopeless is refused at once (412); otherwise
 * the write is queued, and with `Prefer: wait=S` the answer waits for its
 * outcome (200 applied or superseded, 412 rejected, 422 dead-lettered), or
 * says 202 with the receipt's Location when the wait ran out.
 */
import { cacheApplyMany, type CacheClient, type CacheOptions } from './cache.js'
import { json, type HttpEvent, type HttpResult } from './http.js'
import { parseCondition, parsePreferWait, receiptPath } from './preconditions.js'
import { awaitReceipt, type Receipt, type ReceiptDeps } from './receipts.js'
import type { Condition } from './store.js'
import { versionMillis } from './version.js'
import { queueWrite, type Life, type WriterDeps } from './writer.js'

export interface OutcomeDeps extends ReceiptDeps {
  redis: Pick<CacheClient, 'hmget' | 'kvarcApplyMany'>
  cache: CacheOptions
}

/** How far ahead of this host's clock an If-Match version may be (another host's clock runs ahead). */
const MAX_CLOCK_AHEAD_MS = 60_000

/** A 412 at once when the cache shows a version newer than If-Match names: versions only grow, so it can never match. */
async function provenFalse(deps: OutcomeDeps, key: string, condition: Condition | undefined): Promise<HttpResult | undefined> {
  if (condition?.kind !== 'match') return undefined
  if (versionMillis(condition.version) > Date.now() + MAX_CLOCK_AHEAD_MS) {
    return json(412, { detail: `If-Match "${condition.version}" failed: no write has that version yet`, current: null })
  }
  let cached: string | null | undefined
  try {
    ;[cached] = await deps.redis.hmget(deps.cache.prefix + key, 'ver')
  } catch {
    return undefined // Redis away: the consumer decides, as always
  }
  if (!cached || BigInt(cached) <= condition.version) return undefined
  return json(412, { detail: `If-Match "${condition.version}" failed: the key's current version is "${cached}"`, current: cached })
}

/** The answer to a write the client waited for; `extra` (the write's expiry) joins a 200. */
export function answerFor(receipt: Receipt | undefined, key: string, version: string, headers: Record<string, string>, extra: Record<string, unknown> = {}): HttpResult {
  switch (receipt?.status) {
    case 'applied':
      return json(200, { status: 'applied', version, ...extra }, headers)
    case 'superseded':
      return json(200, { status: 'superseded', version, current: receipt.current, ...extra }, headers)
    case 'rejected':
      return json(412, { detail: receipt.reason ?? 'the condition failed', status: 'rejected', version, current: receipt.current }, headers)
    case 'dead-lettered':
      return json(422, { detail: `the record refused this write: ${receipt.reason ?? 'no reason given'}`, status: 'dead-lettered', version }, headers)
    default:
      return json(202, { status: 'queued', version }, { ...headers, location: receiptPath(key, version) })
  }
}

/**
 * A PUT or DELETE after its body or key was validated: the condition and
 * Prefer headers, the queueing, the wait.
 */
export async function writeWithOutcome(deps: WriterDeps & OutcomeDeps, event: HttpEvent, queue: string, key: string, value: string | null, life?: Life): Promise<HttpResult> {
  const condition = parseCondition(event)
  const wait = parsePreferWait(event)
  const refused = await provenFalse(deps, key, condition)
  if (refused) return refused
  const { version, expiresAt } = await queueWrite(deps, queue, key, value, condition, life)
  if (wait === undefined) return json(200, expiresAt === undefined ? { status: 'queued', version } : { status: 'queued', version, expiresAt })
  // The write is queued whatever happens now: a record that cannot be read while waiting
  // gives 202 with the receipt to ask later, never an error that would invite a second write.
  const receipt = await awaitReceipt(deps, key, BigInt(version), wait).catch(() => undefined)
  if (receipt?.status === 'applied') {
    // The wait may have seen the commit before the consumer's cache update: bring a cached entry
    // of the key up to this write now (newer-only, as the consumer would), so "applied" is what
    // the next GET shows. A key with no cached entry gets only a version marker, as from the consumer.
    await cacheApplyMany(deps.redis, deps.cache, [{ key, value, version, deleted: value === null, expiresAt: expiresAt ?? null }]).catch(() => {})
  }
  return answerFor(receipt, key, version, { 'preference-applied': `wait=${wait}` }, expiresAt === undefined ? {} : { expiresAt })
}
