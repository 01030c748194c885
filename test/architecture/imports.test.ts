/**
 * Who may import whom, as .dependency-cruiser.cjs says (docs/architecture.md):
 * the whole tree obeys, and each rule really bites (a small tree that breaks
 * it, in a temporary folder, is reported).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cruise, type ICruiseResult } from 'dependency-cruiser'
import { describe, expect, it } from 'vitest'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))
const rules = createRequire(import.meta.url)(join(ROOT, '.dependency-cruiser.cjs'))
const ROOMS = ['src', 'runtime', 'ops', 'scripts', 'bench', 'plugins'] as const

async function violations(baseDir: string, rooms: readonly string[]): Promise<string[]> {
  const { output } = await cruise([...rooms], { ...rules.options, validate: true, ruleSet: { forbidden: rules.forbidden }, baseDir, tsConfig: { fileName: join(ROOT, 'tsconfig.json') } })
  return (output as ICruiseResult).summary.violations.map(v => `${v.rule.name}: ${v.from} → ${v.to}`)
}

describe('import rules', () => {
  it('the tree obeys every rule', async () => {
    expect(await violations(ROOT, ROOMS.filter(room => existsSync(join(ROOT, room))))).toEqual([])
  }, 60_000)

  it('each rule reports a tree that breaks it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvarc-imports-'))
    try {
      const file = (path: string, text: string) => {
        mkdirSync(dirname(join(dir, path)), { recursive: true })
        writeFileSync(join(dir, path), text)
      }
      file('src/shared/a.ts', "import { b } from './b.js'\nexport const a = b\n")
      file('src/shared/b.ts', "import { a } from './a.js'\nexport const b = 1\nexport const c = a\n")
      file('src/http/get-x/index.ts', "import { y } from '../get-y/helper.js'\nimport { host } from '../../../ops/host.js'\nexport const x = y + host\n")
      file('src/http/get-y/helper.ts', 'export const y = 1\n')
      file('ops/host.ts', 'export const host = 1\n')
      file('runtime/gateway.ts', "import { a } from '../src/shared/a.js'\nexport const g = a\n")
      file('test/support/fixture.ts', 'export const fixture = 1\n')
      file('ops/soak.ts', "import { fixture } from '../test/support/fixture.js'\nexport const soak = fixture\n")
      file('bench/run.ts', "import { fixture } from '../test/support/fixture.js'\nexport const run = fixture\n")
      file('ops/soak.test.ts', "import { fixture } from '../test/support/fixture.js'\nexport const t = fixture\n")
      const found = await violations(dir, ['src', 'ops', 'runtime', 'bench'])
      expect(found).toEqual(expect.arrayContaining([
        'runtime-knows-no-app: runtime/gateway.ts → src/shared/a.ts',
        'functions-are-self-contained: src/http/get-x/index.ts → ops/host.ts',
        'no-handler-imports-another: src/http/get-x/index.ts → src/http/get-y/helper.ts',
        expect.stringMatching(/^no-circular: src\/shared\/(a|b)\.ts → src\/shared\/(a|b)\.ts$/),
        'ops-and-bench-use-no-test-code: ops/soak.ts → test/support/fixture.ts',
        'ops-and-bench-use-no-test-code: bench/run.ts → test/support/fixture.ts',
      ]))
      // A test beside the code it tests may use the test fixtures.
      expect(found).not.toContain('ops-and-bench-use-no-test-code: ops/soak.test.ts → test/support/fixture.ts')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
