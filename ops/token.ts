/**
 * npm run token -- create --name N [--read P] [--write P] [--readwrite P] [--deny P] [--all] [--admin]
 *                  list [--json]
 *                  revoke N
 *
 * Each rule flag may repeat. A rule's prefix is a plain string prefix: the
 * longest matching prefix decides, deny wins at equal length. The new token is
 * printed once; kvarc keeps only its hash. A revoked token stops working within
 * KVARC_TOKEN_CACHE_MS (5 s by default), the time a host caches a look-up.
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/shared/config.js'
import { openDatabase } from '../src/shared/postgres.js'
import { createToken, listTokens, revokeToken, rulesFromFlags, TokenError } from './tokens.js'

const USAGE = `usage: npm run token -- create --name N [--read PREFIX]… [--write PREFIX]… [--readwrite PREFIX]… [--deny PREFIX]… [--all] [--admin]
       npm run token -- list [--json]
       npm run token -- revoke NAME
`

export async function main(argv: string[], env: Record<string, string | undefined> = process.env, out: (s: string) => void = s => process.stdout.write(s)): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        read: { type: 'string', multiple: true },
        write: { type: 'string', multiple: true },
        readwrite: { type: 'string', multiple: true },
        deny: { type: 'string', multiple: true },
        all: { type: 'boolean' },
        admin: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    })
  } catch (error) {
    process.stderr.write(`${USAGE}   (${(error as Error).message})\n`)
    return 2
  }
  const [command, ...rest] = parsed.positionals
  const { values } = parsed
  const config = loadConfig(env)
  const pool = await openDatabase(config.databaseUrl, 1)
  try {
    if (command === 'create' && rest.length === 0 && values.name) {
      const rules = rulesFromFlags({ read: values.read, write: values.write, readwrite: values.readwrite, deny: values.deny, all: values.all ? [true] : undefined })
      const { token } = await createToken(pool, { name: values.name, rules, admin: values.admin ?? false })
      if (values.json) out(JSON.stringify({ name: values.name, token, rules, admin: values.admin ?? false }) + '\n')
      else {
        out(`token ${values.name} (shown once; kvarc keeps only its hash):\n${token}\n`)
        out(`rules: ${rules.length ? rules.map(r => `${r.access} ${JSON.stringify(r.prefix)}`).join(', ') : 'none'}${values.admin ? ' · admin' : ''}\n`)
      }
      return 0
    }
    if (command === 'list' && rest.length === 0) {
      const tokens = await listTokens(pool)
      if (values.json) out(JSON.stringify(tokens, null, 2) + '\n')
      else if (tokens.length === 0) out('no tokens\n')
      else for (const t of tokens) out(`${t.name}  ${t.rules.map(r => `${r.access} ${JSON.stringify(r.prefix)}`).join(', ') || '(no rules)'}${t.admin ? '  admin' : ''}  created ${t.createdAt}\n`)
      return 0
    }
    if (command === 'revoke' && rest.length === 1) {
      if (await revokeToken(pool, rest[0] as string)) {
        out(`revoked ${rest[0]}: it stops working within ${config.tokenCacheMs} ms\n`)
        return 0
      }
      process.stderr.write(`token: no live token named ${rest[0]}\n`)
      return 1
    }
    process.stderr.write(USAGE)
    return 2
  } catch (error) {
    if (error instanceof TokenError) {
      process.stderr.write(`token: ${error.message}\n`)
      return 2
    }
    throw error
  } finally {
    await pool.end().catch(() => {})
  }
}

// Run only as the entry point, so a test can import main.
const entry = process.argv[1]
if (entry && import.meta.url === pathToFileURL(resolve(entry)).href) {
  main(process.argv.slice(2)).then(
    code => { process.exitCode = code },
    (error: unknown) => {
      console.error(`token failed: ${(error as Error).message}`)
      process.exitCode = 1
    },
  )
}
