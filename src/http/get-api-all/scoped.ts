/**
 * One page of the keys a token may read: the listing walks the readable
 * ranges within the requested prefix (auth.ts readableRanges) in key order, so
 * a prefix can never widen a token's scope and a page never scans keys it must
 * not return.
 */
import type { KeyRange } from '../../shared/auth.js'
import type { Queryable } from '../../shared/postgres.js'
import { listKeys, PAGE_BYTE_BUDGET } from '../../shared/store.js'

export async function listReadable(db: Queryable, ranges: readonly KeyRange[], after: string, limit: number): Promise<{ rows: { key: string, value: string }[], more: boolean }> {
  const rows: { key: string, value: string }[] = []
  let budget = PAGE_BYTE_BUDGET
  const open = ranges.filter(r => r.to === null || r.to > after)
  for (const [i, range] of open.entries()) {
    const page = await listKeys(db, { from: range.from, to: range.to, after, limit: limit - rows.length, byteBudget: budget })
    rows.push(...page.rows)
    for (const row of page.rows) budget -= Buffer.byteLength(row.key) + Buffer.byteLength(row.value)
    if (page.more) return { rows, more: true }
    if (rows.length >= limit || budget <= 0) {
      // Full: is anything left in the ranges after this one?
      for (const later of open.slice(i + 1)) {
        if ((await listKeys(db, { from: later.from, to: later.to, after, limit: 1, byteBudget: 1 })).rows.length > 0) return { rows, more: true }
      }
      return { rows, more: false }
    }
  }
  return { rows, more: false }
}
