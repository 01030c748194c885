/**
 * Receipts: what became of one write, named by its key and version. `applied`
 * and `superseded` come from the record itself (its version for the key);
 * `rejected` and `dead-lettered` from the outcomes the consumer stored. Plain
 * writes store nothing, so the ordinary write path pays nothing for receipts.
 */
import type { NoticeWaiters } from './notices.js'
import type { Queryable } from './postgres.js'
import { isExpired } from './store.js'
import { isConditional, versionAtMillis } from './version.js'

export type WriteStatus = 'queued' | 'applied' | 'superseded' | 'rejected' | 'dead-lettered'

export interface Receipt {
  key: string
  version: string
  status: WriteStatus
  /** The key's version in the record now; null when it has no row. */
  current: string | null
  /** Why a write was rejected or dead-lettered. */
  reason?: string
  /** An applied PUT with a TTL: when the key expires (epoch seconds), and whether it has. */
  expiresAt?: number
  expired?: boolean
  /** A rejected atomic batch: the ops whose condition failed. */
  failed?: { index: number, key: string, current: string | null }[]
}

/** The key's row and the write's stored outcome, both by primary key. */
export const READ_RECEIPT = `
SELECT s.version::text AS current, s.expires_at::float8 AS "expiresAt", o.status, o.reason, o.detail
FROM (SELECT 1) AS one
LEFT JOIN kv_store s ON s.key = $1
LEFT JOIN kv_write_outcomes o ON o.key = $1 AND o.version = $2
`

/** A receipt older than the horizon may have lost its evidence (purged tombstones and outcomes). */
export class ReceiptExpiredError extends Error {
  override name = 'ReceiptExpiredError'
}

/**
 * The write's status now. A conditional write not yet decided stays `queued`
 * even when the key already holds a newer version: it will be rejected, not
 * superseded, and only the consumer may say so.
 */
export async function readReceipt(db: Queryable, key: string, version: bigint, horizon: bigint): Promise<Receipt> {
  const { rows } = await db.query<{ current: string | null, expiresAt: number | null, status: string | null, reason: string | null, detail: { failed?: { index: number, key: string, current: string | null }[] } | null }>({
    name: 'kvarc-read-receipt', text: READ_RECEIPT, values: [key, version.toString()],
  })
  const { current, expiresAt, status: stored, reason, detail } = rows[0] ?? { current: null, expiresAt: null, status: null, reason: null, detail: null }
  const base = { key, version: version.toString(), current }
  if (current === version.toString()) return expiresAt === null ? { ...base, status: 'applied' } : { ...base, status: 'applied', expiresAt, expired: isExpired(expiresAt) }
  if (stored === 'rejected' || stored === 'dead-lettered') {
    const failed = detail?.failed?.map(({ index, key: k, current: c }) => ({ index, key: k, current: c }))
    return { ...base, status: stored, ...(reason ? { reason } : {}), ...(failed ? { failed } : {}) }
  }
  if (stored === 'applied') return { ...base, status: 'superseded' }
  if (current !== null && BigInt(current) > version && !isConditional(version)) return { ...base, status: 'superseded' }
  if (version < horizon) throw new ReceiptExpiredError('this write is older than the tombstone horizon: its outcome is no longer kept')
  return { ...base, status: 'queued' }
}

/** Whether a status is final: every status but `queued` is. */
export function isDecided(receipt: Receipt): boolean {
  return receipt.status !== 'queued'
}

export interface ReceiptDeps {
  db: () => Promise<Queryable>
  notices: NoticeWaiters
  tombstoneHorizonMs: number
}

/**
 * The write's receipt once it is no longer queued, or after `seconds`
 * (whichever comes first), woken by the consumer's notices. Throws when the
 * record cannot be read, or ReceiptExpiredError.
 */
export async function awaitReceipt(deps: ReceiptDeps, key: string, version: bigint, seconds: number): Promise<Receipt> {
  const horizon = versionAtMillis(Date.now() - deps.tombstoneHorizonMs)
  const db = await deps.db()
  let latest: Receipt | undefined
  await deps.notices.until(key, Date.now() + seconds * 1000, async () => {
    latest = await readReceipt(db, key, version, horizon)
    return isDecided(latest) ? latest : undefined
  })
  return latest as Receipt
}
