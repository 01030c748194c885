/**
 * Write versions: a hybrid logical clock packed in 63 bits, so it fits
 * PostgreSQL's signed bigint and sorts as a number.
 *
 *   [ 42 bits wall-clock ms | 10 bits counter | 1 bit conditional | 10 bits writer id ]
 *
 * 42 bits of milliseconds last until the year 2109; the counter allows 1024
 * versions per millisecond per writer (more borrows the next millisecond); the
 * writer id makes versions unique across up to 1024 live writers. Versions are
 * strictly increasing per writer, even if the wall clock steps back. The
 * conditional bit marks a write with If-Match / If-None-Match, so a receipt
 * knows, from the version alone, that a write not yet decided is still queued
 * even when the key already holds a newer version.
 */
export const COUNTER_BITS = 10n
export const WRITER_BITS = 10n
const CONDITIONAL_BIT = 1n << WRITER_BITS
export const MAX_WRITER_ID = (1 << Number(WRITER_BITS)) - 1
const MAX_COUNTER = (1 << Number(COUNTER_BITS)) - 1
const LOW_BITS = COUNTER_BITS + 1n + WRITER_BITS

/** Whether the write of this version carried a condition. */
export function isConditional(version: bigint): boolean {
  return (version & CONDITIONAL_BIT) !== 0n
}

/** How a version is stamped: `after`, a version it must exceed (a clock ahead of this one issued it). */
export interface StampOptions { conditional?: boolean, after?: bigint }

/** The wall-clock millisecond a version was issued at. */
export function versionMillis(version: bigint): number {
  return Number(version >> LOW_BITS)
}

/** The smallest version issued at or after `ms`: used as the tombstone horizon. */
export function versionAtMillis(ms: number): bigint {
  return BigInt(Math.max(0, Math.floor(ms))) << LOW_BITS
}

export class VersionClock {
  private lastMs = 0
  private counter = 0
  private readonly writerId: bigint

  /**
   * @param floorMs versions start after this millisecond (a process switching writer ids stays monotonic)
   * @example new VersionClock(7).next() // 7 in the low bits, Date.now() in the high bits
   */
  constructor(writerId: number, private readonly now: () => number = Date.now, floorMs = 0) {
    this.lastMs = floorMs
    if (!Number.isInteger(writerId) || writerId < 0 || writerId > MAX_WRITER_ID) {
      throw new RangeError(`writer id must be an integer from 0 to ${MAX_WRITER_ID}`)
    }
    this.writerId = BigInt(writerId)
  }

  /** The millisecond of the last version issued. */
  get lastMillis(): number {
    return this.lastMs
  }

  next(options: StampOptions = {}): bigint {
    const wall = this.now()
    // Hybrid clock: a version from a writer whose clock runs ahead moves this one past it.
    if (options.after !== undefined && versionMillis(options.after) >= Math.max(wall, this.lastMs)) {
      this.lastMs = versionMillis(options.after) + 1
      this.counter = 0
    } else if (wall > this.lastMs) {
      this.lastMs = wall
      this.counter = 0
    } else if (this.counter < MAX_COUNTER) {
      this.counter++
    } else {
      // Counter exhausted within one millisecond (or the clock stepped back): run ahead by one.
      this.lastMs++
      this.counter = 0
    }
    return (BigInt(this.lastMs) << LOW_BITS) | (BigInt(this.counter) << (WRITER_BITS + 1n)) | (options.conditional ? CONDITIONAL_BIT : 0n) | this.writerId
  }
}

/** Versions travel as decimal strings: JSON numbers lose precision beyond 2^53. */
export const VERSION_PATTERN = /^[1-9][0-9]{0,18}$/
const MAX_VERSION = (1n << 63n) - 1n

/** Parses a decimal version string, or returns undefined when it is not a valid 63-bit version. */
export function parseVersion(text: unknown): bigint | undefined {
  if (typeof text !== 'string' || !VERSION_PATTERN.test(text)) return undefined
  const version = BigInt(text)
  return version <= MAX_VERSION ? version : undefined
}
