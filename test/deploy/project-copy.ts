/**
 * A throwaway copy of the project for the deploy tests. Building a template or
 * container contexts rebuilds every bundle (minified, as for a deploy); doing it
 * in the checkout would rewrite build/ under other tests and a running stack.
 * node_modules is linked, not copied.
 *
 * @example
 *   const project = copyProject('template')
 *   afterAll(() => project.remove())
 */
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

export const ROOT = resolve(import.meta.dirname, '..', '..')

/** What Inventory, the plugins and the build read: app.arc and what it points at (the plugins import runtime/rmq/pragma.mjs). */
const PROJECT_FILES = ['app.arc', 'package.json', 'tsconfig.json', 'src', 'types', 'runtime', 'plugins', 'scripts', 'public', 'containers']

export interface ProjectCopy {
  dir: string
  /** Runs `node <script> ...args` in the copy; rejects on a non-zero exit, with its output. */
  node(script: string, args?: string[]): Promise<{ stdout: string, stderr: string }>
  remove(): void
}

const run = promisify(execFile)

export function copyProject(label: string): ProjectCopy {
  const dir = mkdtempSync(join(tmpdir(), `kvarc-${label}-`))
  for (const entry of PROJECT_FILES) {
    const from = join(ROOT, entry)
    // Tests are files, not functions; leaving them out keeps the copy small.
    if (existsSync(from)) cpSync(from, join(dir, entry), { recursive: true, filter: source => !source.endsWith('.test.ts') })
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  return {
    dir,
    // 3 minutes: a script here builds every bundle, minified with source maps, each carrying the AWS SDK's
    // Secrets Manager client (src/shared/secrets.ts); on a loaded 2-core machine that alone took over a minute.
    node: (script, args = []) => run(process.execPath, [script, ...args], { cwd: dir, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}
