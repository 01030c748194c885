/**
 * The purge's cut (src/shared/purge.ts, shared with the purge-tombstones
 * function): an explicit --before-version only narrows what the horizon allows
 * (a tombstone younger than the horizon is never purged: the consumers would
 * then let its late PUT bring the key back).
 */
import { describe, expect, it } from 'vitest'
import { purgeCut } from '../src/shared/purge.js'
import { versionAtMillis } from '../src/shared/version.js'
import { parseFlags } from './purge.js'

const NOW = Date.parse('2025-06-01T00:00:00Z')
const HOUR = 3600_000

describe('npm run purge: the cut', () => {
  it('is the horizon by default', () => {
    expect(purgeCut(NOW, HOUR)).toEqual({ cut: versionAtMillis(NOW - HOUR), byHorizon: true })
  })

  it('is an explicit cut-off older than the horizon, and never one younger', () => {
    const older = versionAtMillis(NOW - 2 * HOUR) + 5n
    expect(purgeCut(NOW, HOUR, older)).toEqual({ cut: older, byHorizon: false })
    expect(purgeCut(NOW, HOUR, versionAtMillis(NOW))).toEqual({ cut: versionAtMillis(NOW - HOUR), byHorizon: true })
  })

  it('reads --dry-run and --before-version, and refuses anything else', () => {
    expect(parseFlags([])).toEqual({ dryRun: false })
    expect(parseFlags(['--dry-run', '--before-version', '3765943245876494336'])).toEqual({ dryRun: true, before: 3765943245876494336n })
    expect(parseFlags(['--before-version=42'])).toEqual({ dryRun: false, before: 42n })
    expect(() => parseFlags(['--before-version'])).toThrow(/needs a version/)
    expect(() => parseFlags(['--before-version', '-1'])).toThrow(/needs a version/)
    expect(() => parseFlags(['--before-version', '99999999999999999999'])).toThrow(/needs a version/)
    expect(() => parseFlags(['--force'])).toThrow(/unknown argument "--force"/)
  })
})
