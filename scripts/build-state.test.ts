/**
 * When `npm start` (and status, purge, dlq) rebuild before they run: only when
 * a bundle is missing or a source is newer than the last build.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { staleReason, writeManifest } from './build-state.mjs'

let root: string
const file = (path: string, text = 'x') => {
  mkdirSync(join(root, path, '..'), { recursive: true })
  writeFileSync(join(root, path), text)
  return join(root, path)
}
/** Sets a file's modification time `seconds` from the build's start. */
const touch = (path: string, startedAt: number, seconds: number) => utimesSync(join(root, path), new Date(), new Date(startedAt + seconds * 1000))

beforeEach(() => { root = mkdtempSync(join(tmpdir(), 'kvarc-build-state-')) })
afterEach(() => rmSync(root, { recursive: true, force: true }))

describe('staleReason', () => {
  it('asks for a build when nothing was built', () => {
    expect(staleReason(root)).toBe('nothing is built yet')
  })

  it('is satisfied right after a build, and names a missing bundle or a source edited since', () => {
    // Prepare: a build that read two sources and wrote two bundles.
    const startedAt = Date.now() - 60_000
    const sources = [file('app.arc'), file('src/a.ts')]
    const outputs = [file('build/a/index.mjs'), file('build/ops/start.mjs')]
    for (const path of ['app.arc', 'src/a.ts']) touch(path, startedAt, -10)
    writeManifest(root, { startedAt, outputs, inputs: sources })
    // Assess
    expect(staleReason(root)).toBeUndefined()
    touch('src/a.ts', startedAt, 5)
    expect(staleReason(root)).toBe('src/a.ts changed since the last build')
    touch('src/a.ts', startedAt, -10)
    rmSync(join(root, 'build/ops/start.mjs'))
    expect(staleReason(root)).toBe('build/ops/start.mjs is missing')
  })

  it('does not ask for a build where only the bundles are (no sources, as in the platform image)', () => {
    const startedAt = Date.now() - 60_000
    const outputs = [file('build/a/index.mjs')]
    writeManifest(root, { startedAt, outputs, inputs: [join(root, 'src/gone.ts'), join(root, 'package-lock.json')] })
    expect(staleReason(root)).toBeUndefined()
  })

  it('counts app.arc and the lock file as sources of every build', () => {
    const startedAt = Date.now() - 60_000
    writeManifest(root, { startedAt, outputs: [file('build/a/index.mjs')], inputs: [] })
    file('package-lock.json')
    touch('package-lock.json', startedAt, 5)
    expect(staleReason(root)).toBe('package-lock.json changed since the last build')
  })
})
