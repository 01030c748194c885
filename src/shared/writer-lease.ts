/**
 * Writer ids for version clocks, leased from PostgreSQL. A version is unique only
 * if no two live writers share an id, so an id is held under a lease: a writer
 * stamps versions only while its lease is valid (by its own clock, with a safety
 * margin), renews it in the background halfway through, and takes a free id when
 * it lost it (a Lambda container frozen past its lease, a long database outage).
 * A dead writer's id becomes free when its lease expires; ids are never shared
 * while leased, however many writers have come and gone.
 */
import { randomUUID } from 'node:crypto'
import { ServiceUnavailableError } from './errors.js'
import type { Queryable } from './postgres.js'
import { MAX_WRITER_ID, VersionClock, type StampOptions } from './version.js'

/** Takes the id free the longest; SKIP LOCKED lets writers starting together take different ids. */
export const ACQUIRE_LEASE = `
UPDATE kv_writer_leases l SET holder = $1, expires_at = now() + make_interval(secs => $2)
FROM (SELECT id FROM kv_writer_leases WHERE expires_at < now() ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED) free
WHERE l.id = free.id
RETURNING l.id
`

/** Extends a lease only if this holder still has it and it has not expired. */
export const RENEW_LEASE = `
UPDATE kv_writer_leases SET expires_at = now() + make_interval(secs => $3)
WHERE id = $1 AND holder = $2 AND expires_at > now()
RETURNING id
`

export interface LeaseOptions {
  /** Lease length; renewal starts halfway. */
  leaseMs?: number
  /** A writer stops stamping this long before its lease ends: covers clock skew between hosts. */
  safetyMs?: number
  now?: () => number
}

/**
 * A version clock whose writer id is leased. `next()` is synchronous while the
 * lease is valid (the hot path); it waits for PostgreSQL only when the writer has
 * no valid lease, and answers 503 when it cannot get one.
 *
 * @example const clock = new LeasedVersionClock(() => pool); const v = await clock.next()
 */
export class LeasedVersionClock {
  private readonly holder = randomUUID()
  private readonly leaseMs: number
  private readonly safetyMs: number
  private readonly now: () => number
  private clock: VersionClock | undefined
  private writerId: number | undefined
  private renewAt = 0
  private validUntil = 0
  private refreshing: Promise<void> | undefined

  constructor(private readonly db: () => Promise<Queryable>, options: LeaseOptions = {}) {
    this.leaseMs = options.leaseMs ?? 10 * 60_000
    this.safetyMs = options.safetyMs ?? 60_000
    this.now = options.now ?? Date.now
  }

  next(options?: StampOptions): bigint | Promise<bigint> {
    const now = this.now()
    if (this.clock && now < this.validUntil) {
      if (now >= this.renewAt) this.refresh().catch(() => {}) // early renewal failing is retried on the next write
      return this.clock.next(options)
    }
    return this.refresh().then(() => {
      if (!this.clock || this.now() >= this.validUntil) throw new ServiceUnavailableError('this writer has no valid writer id lease; retry shortly')
      return this.clock.next(options)
    })
  }

  /** The id currently held, for diagnostics and tests. */
  get id(): number | undefined {
    return this.writerId
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.lease().finally(() => { this.refreshing = undefined })
    return this.refreshing
  }

  private async lease(): Promise<void> {
    const started = this.now()
    const seconds = this.leaseMs / 1000
    let db: Queryable
    try {
      db = await this.db()
    } catch (error) {
      throw new ServiceUnavailableError('the database is unavailable, so this writer cannot lease a writer id; retry shortly', { cause: error })
    }
    let id: number | undefined
    if (this.writerId !== undefined) {
      const { rows } = await db.query<{ id: number }>(RENEW_LEASE, [this.writerId, this.holder, seconds])
      id = rows[0]?.id
    }
    if (id === undefined) {
      const { rows } = await db.query<{ id: number }>(ACQUIRE_LEASE, [this.holder, seconds])
      id = rows[0]?.id
      if (id === undefined) throw new ServiceUnavailableError(`all ${MAX_WRITER_ID + 1} writer ids are leased; retry shortly`)
    }
    if (id !== this.writerId || !this.clock) {
      // A new id starts after the last millisecond this process stamped, so its versions keep increasing.
      this.clock = new VersionClock(id, this.now, this.clock?.lastMillis)
      this.writerId = id
    }
    // Measured from before the request: PostgreSQL's expiry is later than this.
    this.renewAt = started + this.leaseMs / 2
    this.validUntil = started + this.leaseMs - this.safetyMs
  }
}
