/** npm run token: create (shown once), list, revoke, refusals, against this file's own database. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { isolate, type Isolated } from './isolated.js'
import { main } from './token.js'

let iso: Isolated

async function run(...argv: string[]): Promise<{ code: number, out: string }> {
  let out = ''
  const code = await main(argv, iso.env, s => { out += s })
  return { code, out }
}

beforeAll(async () => {
  iso = await isolate('token_cli')
})

afterAll(async () => {
  await iso?.cleanup()
})

describe('npm run token', () => {
  it('creates a token with repeated rules, lists it without its secret, revokes it', async () => {
    const created = await run('create', '--name', 'app', '--read', 'user:1:', '--read', 'shared/', '--deny', 'shared/private/', '--admin', '--json')
    expect(created.code).toBe(0)
    const { token, rules, admin } = JSON.parse(created.out)
    expect(token).toMatch(/^kvarc_/)
    expect(admin).toBe(true)
    expect(rules).toEqual([{ prefix: 'user:1:', access: 'read' }, { prefix: 'shared/', access: 'read' }, { prefix: 'shared/private/', access: 'deny' }])
    const listed = await run('list')
    expect(listed.out).toContain('app  read "user:1:", read "shared/", deny "shared/private/"  admin')
    expect(listed.out).not.toContain(token.split('_')[2])
    expect(await run('revoke', 'app')).toEqual({ code: 0, out: 'revoked app: it stops working within 5000 ms\n' })
    expect((await run('list')).out).toBe('no tokens\n')
  })

  it('refuses a token without rules, a name taken, an unknown revoke and bad usage', async () => {
    expect((await run('create', '--name', 'nothing')).code).toBe(2)
    expect((await run('create', '--name', 'dup', '--all')).code).toBe(0)
    expect((await run('create', '--name', 'dup', '--all')).code).toBe(2)
    expect((await run('revoke', 'never-made')).code).toBe(1)
    expect((await run('create')).code).toBe(2)
    expect((await run('frobnicate')).code).toBe(2)
  })
})
