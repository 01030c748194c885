/**
 * The verifier: given every write a load run sent (with its outcome) and, after
 * the queues drained, the record and the cache, it checks per key that
 *
 *  - nothing acknowledged was lost: the stored version is at least the highest
 *    acknowledged version (versions are 63-bit decimal strings: compared as BigInt);
 *  - the stored row is one of our writes: the acknowledged write with that
 *    version, or else an unknown-outcome write (5xx / no answer, which may have
 *    been queued) of the same kind and, for a PUT, the same (unique) value;
 *  - no deleted key came back: when the newest acknowledged write is a DELETE,
 *    the key is live only if an unknown-outcome PUT explains it;
 *  - the cache agrees with the record: a Redis entry, when present, has the
 *    row's version, tombstone flag and value (a negative entry for a key with no row).
 */
import { outcomeOf, type WriteRecord } from './load.js'
import { versionMillis } from '../../../src/shared/version.js'

export interface StoredRow { value: string | null, version: string, deleted: boolean }
/**
 * The raw cache hash, as cache.ts writes it: `del` is '0' (a value), '1' (a
 * negative entry) or 'm' (a marker: the record holds `ver`, the value is not
 * cached). `ttlMs` is Redis's PTTL (-1: no expiry).
 */
export interface CacheHash { ver: string, del: string, val: string, ttlMs?: number }

export interface Verdict {
  keys: number
  writes: number
  acknowledged: number
  unknown: number
  rejected: number
  /** Keys whose final row came from a write whose answer was not 200 (allowed: it may have been queued). */
  appliedUnknown: number
  /** Keys whose final row is a second stamping of an acknowledged request (same unique value, another version). */
  appliedDuplicate: number
  /** Acknowledged writes newer than what the record holds. */
  lost: number
  /** Keys deleted by their newest acknowledged write that are live with no write to explain it. */
  resurrections: number
  /** Rows that match no write we sent (wrong value, wrong kind, unknown version). */
  mismatches: number
  /**
   * A client's acknowledged write stamped with a version not above that of an
   * earlier acknowledged write of the same client to the same key: the client
   * waited for the first 200 before sending the second, so the second must win.
   */
  reordered: number
  /** Cache entries that disagree with the record. */
  staleCache: number
  cacheEntries: number
  /** The first few problems, for the failure message. */
  problems: string[]
}

const MAX_PROBLEMS = 20

export function verify(records: readonly WriteRecord[], rows: ReadonlyMap<string, StoredRow>, cache: ReadonlyMap<string, CacheHash>): Verdict {
  const byKey = new Map<string, WriteRecord[]>()
  for (const record of records) {
    const list = byKey.get(record.key)
    if (list) list.push(record)
    else byKey.set(record.key, [record])
  }
  const verdict: Verdict = {
    keys: byKey.size, writes: records.length, acknowledged: 0, unknown: 0, rejected: 0, appliedUnknown: 0, appliedDuplicate: 0,
    lost: 0, resurrections: 0, mismatches: 0, reordered: 0, staleCache: 0, cacheEntries: 0, problems: [],
  }
  const problem = (text: string) => { if (verdict.problems.length < MAX_PROBLEMS) verdict.problems.push(text) }

  for (const [key, writes] of byKey) {
    const acked: WriteRecord[] = []
    const unknown: WriteRecord[] = []
    for (const w of writes) {
      const outcome = outcomeOf(w)
      verdict[outcome]++
      if (outcome === 'acknowledged') acked.push(w)
      else if (outcome === 'unknown') unknown.push(w)
    }
    const lastByClient = new Map<number, bigint>()
    for (const w of [...acked].sort((a, b) => a.sentAt - b.sentAt || a.doneAt - b.doneAt)) {
      const version = BigInt(w.version!)
      const previous = lastByClient.get(w.client)
      if (previous !== undefined && version <= previous) {
        verdict.reordered++
        problem(`reordered: client ${w.client} key ${JSON.stringify(key)} got version ${w.version} after an earlier acknowledged ${previous}`)
      }
      lastByClient.set(w.client, version)
    }
    let newest: WriteRecord | undefined
    for (const w of acked) if (!newest || BigInt(w.version!) > BigInt(newest.version!)) newest = w

    const row = rows.get(key)
    const stored = row ? BigInt(row.version) : 0n
    const lostHere = acked.filter(w => BigInt(w.version!) > stored)
    if (lostHere.length > 0) {
      verdict.lost += lostHere.length
      problem(`lost: key ${JSON.stringify(key)} holds ${row ? `version ${row.version}${row.deleted ? ' (deleted)' : ''}` : 'no row'} but ${lostHere.length} acknowledged write(s) are newer, newest ${newest!.kind} version ${newest!.version}`)
    }

    if (row) {
      const exact = acked.find(w => w.version === row.version)
      const live = !row.deleted
      if (exact) {
        const matches = exact.kind === 'delete' ? row.deleted : live && row.value === exact.value
        if (!matches) {
          verdict.mismatches++
          problem(`mismatch: key ${JSON.stringify(key)} version ${row.version} holds ${row.deleted ? 'a tombstone' : JSON.stringify(row.value)} but that write was a ${exact.kind}${exact.value === null ? '' : ' of ' + JSON.stringify(exact.value)}`)
        }
      } else {
        // Not an acknowledged version: an unknown-outcome write of ours, stamped after it was sent; or a
        // second copy of an acknowledged one (nginx retries an idempotent PUT/DELETE on the other host
        // when the first died mid-request: the same request, stamped twice).
        const ms = versionMillis(BigInt(row.version))
        const same = (w: WriteRecord) => (w.kind === 'delete' ? row.deleted : live && w.value === row.value) && ms >= w.sentAt - 1000
        const explained = unknown.some(same)
        const duplicate = !explained && acked.some(w => same(w) && ms <= w.doneAt + 1000)
        if (explained) {
          verdict.appliedUnknown++
        } else if (duplicate) {
          verdict.appliedDuplicate++
        } else if (live && newest?.kind === 'delete') {
          verdict.resurrections++
          problem(`resurrection: key ${JSON.stringify(key)} was deleted (version ${newest.version}) but is live with ${JSON.stringify(row.value)} version ${row.version}`)
        } else {
          verdict.mismatches++
          problem(`mismatch: key ${JSON.stringify(key)} holds version ${row.version} ${row.deleted ? '(deleted)' : JSON.stringify(row.value)}, which no write of this run explains`)
        }
      }
      if (live && newest?.kind === 'delete' && lostHere.length > 0) {
        verdict.resurrections++
        problem(`resurrection: key ${JSON.stringify(key)} is live at version ${row.version} below its acknowledged DELETE ${newest.version}`)
      }
    }

    const entry = cache.get(key)
    if (entry) {
      verdict.cacheEntries++
      // Every entry must expire: the TTL is what bounds staleness if Redis ever missed an update.
      const noTtl = entry.ttlMs === -1
      let stale: boolean
      if (entry.del === 'm') stale = !row || entry.ver !== row.version
      else if (!row) stale = entry.del !== '1'
      else stale = entry.ver !== row.version || (entry.del === '1') !== row.deleted || (!row.deleted && entry.val !== row.value)
      stale ||= noTtl
      if (stale) {
        verdict.staleCache++
        problem(`stale cache: key ${JSON.stringify(key)} cached ${JSON.stringify(entry)} but the record holds ${row ? JSON.stringify(row) : 'no row'}`)
      }
    }
  }
  for (const [key, row] of rows) {
    if (byKey.has(key)) continue
    verdict.mismatches++
    problem(`mismatch: key ${JSON.stringify(key)} holds ${JSON.stringify(row)} but this run never wrote it`)
  }
  return verdict
}

/** True when the verdict has no lost, resurrected, mismatched or stale entries. */
export function clean(verdict: Verdict): boolean {
  return verdict.lost === 0 && verdict.resurrections === 0 && verdict.mismatches === 0 && verdict.reordered === 0 && verdict.staleCache === 0
}
