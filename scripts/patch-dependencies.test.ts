/**
 * The dependency patches of scripts/patch-dependencies.mjs are in place after
 * `npm ci` (postinstall), and applying them again changes nothing.
 */
import { describe, expect, it } from 'vitest'
import { applyPatch, PATCHES } from './patch-dependencies.mjs'

describe('patch-dependencies', () => {
  it('finds every patch applied, and re-applying is a no-op', () => {
    for (const patch of PATCHES) {
      expect(applyPatch(patch, { write: false }), `${patch.package}/${patch.file}`).toBe('already')
    }
  })
})
