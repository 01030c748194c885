/**
 * The record: reads, pages and the batch apply, each one SQL statement built by
 * a named, pure builder. Every function takes its client as an argument.
 */
import type { Queryable } from './postgres.js'

/**
 * What a conditional write requires of its key's current state when it is
 * applied: `match` (If-Match: the row holds exactly `version`, a tombstone's
 * counts), `absent` (If-None-Match: *: no row, or a tombstone) or `present`
 * (If-Match: *: a live row).
 */
export type Condition = { kind: 'match', version: bigint } | { kind: 'absent' } | { kind: 'present' }

/** One write as a consumer applies it: a PUT (value) or a DELETE (deleted, value null). */
export interface Write {
  key: string
  value: string | null
  version: bigint
  deleted: boolean
  /** Only conditional writes (If-Match / If-None-Match) carry one. */
  condition?: Condition
  /** When the key expires, epoch seconds; absent or null: never (a plain PUT removes an expiry). */
  expiresAt?: number | null
}

/** A key's state in the record after a batch: what the cache must converge to. */
export interface RowState {
  key: string
  value: string | null
  version: string
  deleted: boolean
  /** Epoch seconds the key expires at; null or absent: never. */
  expiresAt?: number | null
  /** true when this batch's write is the one now stored; false when the stored row was already newer. */
  applied: boolean
}

export interface StoredValue { value: string | null, version: string, deleted: boolean, expiresAt: number | null }

export const READ_KEY = 'SELECT value, version::text AS version, deleted, expires_at::float8 AS "expiresAt" FROM kv_store WHERE key = $1'

export async function readKey(db: Queryable, key: string): Promise<StoredValue | undefined> {
  const { rows } = await db.query<StoredValue>({ name: 'kvarc-read-key', text: READ_KEY, values: [key] })
  return rows[0]
}

/**
 * Newer version wins; an equal or older version is a no-op, so redelivered and
 * duplicated messages change nothing and any delivery order ends in the same
 * state. A write older than the tombstone horizon ($5) is dropped when no row
 * exists: its key may have been deleted and the tombstone purged since.
 * Rows are inserted in key order so two consumers' batches lock rows in the same
 * order and cannot deadlock. The statement returns the final state of every key
 * it touched, applied or not, so a retried batch can still repair the cache.
 * Input must hold one write per key (isolate.ts sees to it): ON CONFLICT cannot
 * touch a row twice. The rows not applied are looked up by primary key (LATERAL), only
 * for the keys left over: a join of kv_store with the input made the planner
 * hash the whole table on every batch (measured: 300-500 ms per 2,000-row batch
 * on a 200,000-row table, against 40-90 ms this way). The horizon check is a
 * LATERAL primary-key probe for the same reason: as an EXISTS it became a
 * hashed subplan scanning the whole table whenever one old write was in the
 * batch (EXPLAIN ANALYZE on 200,000 rows, batch of 500: 65-165 ms; as a probe
 * about 1.5 ms). Applied rows come back without their value: it is the
 * input's, and sending every value back would double the batch's traffic.
 */
export const APPLY_WRITES = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[], $6::bigint[]) AS i(key, value, version, deleted, expires_at)
), applied AS (
  INSERT INTO kv_store AS t (key, value, version, deleted, expires_at, updated_at)
  SELECT i.key, i.value, i.version, i.deleted, i.expires_at, now() FROM input i
  LEFT JOIN LATERAL (SELECT true AS present FROM kv_store e WHERE i.version < $5 AND e.key = i.key) old ON true
  WHERE i.version >= $5 OR old.present
  ORDER BY i.key
  ON CONFLICT (key) DO UPDATE
    SET value = EXCLUDED.value, version = EXCLUDED.version, deleted = EXCLUDED.deleted, expires_at = EXCLUDED.expires_at, updated_at = EXCLUDED.updated_at
    WHERE t.version < EXCLUDED.version
  RETURNING t.key, t.version
)
SELECT key, NULL AS value, version::text AS version, NULL::boolean AS deleted, NULL::float8 AS "expiresAt", true AS applied FROM applied
UNION ALL
SELECT s.key, s.value, s.version::text, s.deleted, s.expires_at::float8, false
FROM (SELECT key FROM input EXCEPT SELECT key FROM applied) n
CROSS JOIN LATERAL (SELECT * FROM kv_store s WHERE s.key = n.key) s
`

/** Applies a batch (one write per key) in one statement; returns each touched key's final state. */
export async function applyWrites(db: Queryable, writes: readonly Write[], horizon: bigint): Promise<RowState[]> {
  if (writes.length === 0) return []
  // Named: prepared once per connection, so a batch pays no parse and plan (0.9 ms of PostgreSQL
  // CPU each, paid by every small batch of a steady trickle). Its generic plan, which PostgreSQL
  // may settle on after five runs, keeps the primary-key probes (EXPLAIN ANALYZE with
  // plan_cache_mode = force_generic_plan, 500 writes on 100,000 rows: 4.3 ms).
  const { rows } = await db.query<RowState>({
    name: 'kvarc-apply-writes',
    text: APPLY_WRITES,
    values: [
      writes.map(w => w.key),
      writes.map(w => w.value),
      writes.map(w => w.version.toString()),
      writes.map(w => w.deleted),
      horizon.toString(),
      writes.map(w => w.expiresAt ?? null),
    ],
  })
  const byKey = new Map(writes.map(w => [w.key, w]))
  for (const row of rows) {
    if (!row.applied) continue
    const write = byKey.get(row.key) as Write
    row.value = write.value
    row.deleted = write.deleted
    row.expiresAt = write.expiresAt ?? null
  }
  return rows
}

/**
 * Runs the apply statement with no rows: it parses, plans and reaches the table
 * like a real batch but changes nothing. It fails when the statement cannot run
 * at all (table missing, schema changed, server refusing), which is never one
 * write's fault.
 */
export async function probeApply(db: Queryable): Promise<void> {
  await db.query({ name: 'kvarc-apply-writes', text: APPLY_WRITES, values: [[], [], [], [], '0', []] })
}

/**
 * One page of live keys in byte order, after `after`, within `prefix`. The prefix
 * is a range on the primary key ([prefix, upper)), so a page never scans past
 * the keys it can return. Values above $5 bytes are left out (NULL, with their
 * size): listKeys fetches the few a page keeps, so a page of large values never
 * pulls hundreds of MiB across the wire to be cut afterwards.
 */
export const LIST_KEYS = `
SELECT key, CASE WHEN octet_length(value) <= $5 THEN value END AS value, octet_length(value) AS size
FROM kv_store
WHERE NOT deleted AND key > $1 AND key >= $2 AND ($3::text IS NULL OR key < $3) AND (expires_at IS NULL OR expires_at > $6)
ORDER BY key
LIMIT $4
`

/** Now, in the epoch seconds expiries are stored in. A key expires at the start of its second. */
export function nowSeconds(now = Date.now()): number {
  return Math.floor(now / 1000)
}

/** Whether a row with this expiry has expired by `now` (epoch ms). */
export function isExpired(expiresAt: number | null | undefined, now = Date.now()): boolean {
  return expiresAt !== null && expiresAt !== undefined && expiresAt <= nowSeconds(now)
}

/** The large values a page kept, by key. */
export const READ_VALUES = 'SELECT key, value FROM kv_store WHERE key = ANY($1::text[]) AND NOT deleted AND (expires_at IS NULL OR expires_at > $2)'

/** Bytes of keys and values one page may carry (so it also fits Lambda's 6 MB response). */
export const PAGE_BYTE_BUDGET = 1024 * 1024
/** Values up to this size come with the page query; larger ones are fetched once the page is cut. */
const INLINE_VALUE_BYTES = 16 * 1024

/**
 * A page bounded twice: `limit` rows, and a byte budget on keys plus values; it
 * always holds at least one row. `more` tells whether rows remain after it.
 * The keys are those within `prefix`, or within the range [from, to).
 */
export async function listKeys(db: Queryable, options: ({ prefix: string } | { from: string, to: string | null }) & { after: string, limit: number, byteBudget?: number }): Promise<{ rows: { key: string, value: string }[], more: boolean }> {
  const budget = options.byteBudget ?? PAGE_BYTE_BUDGET
  const [from, to] = 'prefix' in options ? [options.prefix, prefixUpperBound(options.prefix)] : [options.from, options.to]
  const { rows } = await db.query<{ key: string, value: string | null, size: number }>({
    name: 'kvarc-list-keys',
    text: LIST_KEYS,
    values: [options.after, from, to, options.limit + 1, INLINE_VALUE_BYTES, nowSeconds()],
  })
  let bytes = 0
  let kept = 0
  for (const row of rows.slice(0, options.limit)) {
    bytes += Buffer.byteLength(row.key) + row.size
    if (kept > 0 && bytes > budget) break
    kept++
  }
  const page = rows.slice(0, kept)
  const large = page.filter(row => row.value === null).map(row => row.key)
  if (large.length > 0) {
    const fetched = await db.query<{ key: string, value: string }>({ name: 'kvarc-read-values', text: READ_VALUES, values: [large, nowSeconds()] })
    const values = new Map(fetched.rows.map(r => [r.key, r.value]))
    for (const row of page) if (row.value === null) row.value = values.get(row.key) ?? null
  }
  // A large value deleted between the two queries leaves the page: it is no longer live.
  return { rows: page.filter(row => row.value !== null).map(({ key, value }) => ({ key, value: value as string })), more: rows.length > kept }
}

/**
 * The smallest string greater than every string that starts with `prefix`, in
 * code point (= UTF-8 byte, "C" collation) order; null when there is none.
 */
export function prefixUpperBound(prefix: string): string | null {
  const points = [...prefix].map(c => c.codePointAt(0) as number)
  while (points.length > 0) {
    let last = (points.pop() as number) + 1
    if (last === 0xd800) last = 0xe000 // skip the surrogate range: not characters
    if (last <= 0x10ffff) return String.fromCodePoint(...points, last)
  }
  return null
}

/**
 * Removes tombstones older than the horizon, a bounded slice at a time so a
 * large purge never holds many row locks at once. Safe because the apply
 * statement drops writes older than the same horizon when no row exists.
 */
export const PURGE_TOMBSTONES = `
DELETE FROM kv_store WHERE key IN (
  SELECT key FROM kv_store WHERE deleted AND version < $1 ORDER BY version LIMIT $2
)
`

export async function purgeTombstones(db: Queryable, horizon: bigint, slice = 5000): Promise<number> {
  let total = 0
  for (;;) {
    const { rowCount } = await db.query(PURGE_TOMBSTONES, [horizon.toString(), slice])
    total += rowCount ?? 0
    if ((rowCount ?? 0) < slice) return total
  }
}

/**
 * Expired keys become tombstones at their own version, a bounded slice at a
 * time. The expiry is checked again on the locked row: a newer PUT that
 * replaced the row meanwhile (no expiry, or a later one) is left alone. Reads
 * never wait for this: they check the expiry themselves.
 */
export const TOMBSTONE_EXPIRED = `
UPDATE kv_store SET deleted = true, value = NULL, updated_at = now()
WHERE key IN (
  SELECT key FROM kv_store WHERE expires_at <= $1 AND NOT deleted ORDER BY expires_at LIMIT $2
) AND expires_at <= $1 AND NOT deleted
`

export async function tombstoneExpired(db: Queryable, now: number, slice = 5000): Promise<number> {
  let total = 0
  for (;;) {
    const { rowCount } = await db.query(TOMBSTONE_EXPIRED, [nowSeconds(now), slice])
    total += rowCount ?? 0
    if ((rowCount ?? 0) < slice) return total
  }
}

/**
 * Stored write outcomes (receipts) older than the horizon, with the tombstones:
 * a receipt that old answers 410. Sliced like the tombstones.
 */
export const PURGE_OUTCOMES = `
DELETE FROM kv_write_outcomes WHERE (key, version) IN (
  SELECT key, version FROM kv_write_outcomes WHERE version < $1 ORDER BY version LIMIT $2
)
`

export async function purgeOutcomes(db: Queryable, horizon: bigint, slice = 5000): Promise<number> {
  let total = 0
  for (;;) {
    const { rowCount } = await db.query(PURGE_OUTCOMES, [horizon.toString(), slice])
    total += rowCount ?? 0
    if ((rowCount ?? 0) < slice) return total
  }
}

/** Tombstones a purge up to the same cut would remove (`npm run purge -- --dry-run`). */
export const COUNT_TOMBSTONES = 'SELECT count(*)::text AS n FROM kv_store WHERE deleted AND version < $1'

export async function countTombstones(db: Queryable, horizon: bigint): Promise<number> {
  const { rows } = await db.query<{ n: string }>(COUNT_TOMBSTONES, [horizon.toString()])
  return Number(rows[0]?.n ?? 0)
}
