/**
 * Tombstone purge with a horizon, end to end: the real stack with a short
 * horizon (KVARC_TOMBSTONE_HORIZON_MS), `npm run purge` as an operator runs it,
 * then the worst case replayed: the PUT that preceded a purged DELETE arrives
 * late (a redelivery, a slow publisher). It must not bring the key back.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodeWrite } from '../../src/shared/messages.js'
import { versionMillis } from '../../src/shared/version.js'
import { waitDrained } from '../../ops/drained.js'
import { publishRaw, readRows } from './harness/inspect.js'
import { startFaultStack, type FaultStack } from './harness/stack.js'

const run = promisify(execFile)
const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
// Which tombstones a purge takes is decided by versions the test holds (the old DELETE's, and the
// young PUT's as an explicit --before-version), never by how long the steps in between take. The
// horizon still bounds how late the stack may apply a write (a write older than the horizon whose
// key has no row is dropped, by design), so it must exceed the worst accept-to-apply delay of a
// loaded 2-core machine, with room; the test waits it out once. The config's minimum is 1000.
const HORIZON_MS = 10_000

let fs: FaultStack & { output: { text(): string } }

beforeAll(async () => {
  // No scheduled purge from the consumer host (purge-tombstones, hourly): only the runs below purge.
  fs = await startFaultStack({ label: 'fpurge', env: { KVARC_TOMBSTONE_HORIZON_MS: String(HORIZON_MS), KVARC_SCHEDULED: 'none' } })
}, 60_000)

afterAll(async () => {
  await fs?.close()
}, 60_000)

async function api(method: string, path: string, body?: unknown): Promise<{ status: number, json: Record<string, unknown> }> {
  const response = await fetch(fs.url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  return { status: response.status, json: await response.json() as Record<string, unknown> }
}

async function drained(): Promise<void> {
  await waitDrained(fs.target.amqpUrl, [fs.target.addQueue, fs.target.delQueue], 20_000, fs.target.consumerUrls?.())
}

async function purge(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['build/ops/purge.mjs', ...args], { env: { ...process.env, ...fs.env, DATABASE_URL: fs.config.databaseUrl }, timeout: 30_000 })
  return stdout
}

describe('tombstone purge (npm run purge) with a horizon', () => {
  it('purges only tombstones older than the horizon, and a late PUT older than a purged DELETE cannot resurrect the key', async () => {
    // Prepare: "old" is put then deleted; after the horizon passes, "young" is put then deleted, and "live" is put.
    const put = await api('PUT', '/api', { key: 'purge/old', value: 'first' })
    expect(put.status).toBe(200)
    const del = await api('DELETE', '/api?key=purge%2Fold')
    expect(del.status).toBe(200)
    await drained()
    expect((await readRows(fs.config.databaseUrl, 'purge/')).get('purge/old')).toMatchObject({ deleted: true, version: del.json.version })

    // Until the old DELETE's version is older than the horizon (its clock bits say when it was
    // accepted): from then on every purge's horizon is past it, however slow what follows is.
    const oldPast = versionMillis(BigInt(del.json.version as string)) + HORIZON_MS
    while (Date.now() <= oldPast) await sleep(oldPast - Date.now() + 1)
    const youngPut = await api('PUT', '/api', { key: 'purge/young', value: 'v' })
    const youngDel = await api('DELETE', '/api?key=purge%2Fyoung')
    const live = await api('PUT', '/api', { key: 'purge/live', value: 'stays' })
    expect([youngPut.status, youngDel.status, live.status]).toEqual([200, 200, 200])
    await drained()
    // The cut between old and young: the young PUT's version. The young tombstone (its DELETE came
    // later) is at or past it, whenever the purge runs; the old one is below it and past the horizon.
    const cut = youngPut.json.version as string
    expect(BigInt(del.json.version as string)).toBeLessThan(BigInt(cut))
    expect(BigInt(youngDel.json.version as string)).toBeGreaterThan(BigInt(cut))

    // A dry run counts and removes nothing.
    // (The purge cuts at the earlier of the horizon and --before-version: on a fast run the horizon
    // spares the young tombstone, on a slow one the version does; either way the count is 1.)
    expect(await purge('--dry-run', '--before-version', cut)).toMatch(/dry run\): 1 tombstones older than /)
    expect((await readRows(fs.config.databaseUrl, 'purge/')).get('purge/old')).toMatchObject({ deleted: true })

    // Act: purge as an operator would, up to the cut.
    const out = await purge('--before-version', cut)

    // Assess: the old tombstone is gone, the young one and the live row stay.
    expect(out).toMatch(/removed 1 tombstones/)
    let rows = await readRows(fs.config.databaseUrl, 'purge/')
    expect(rows.has('purge/old')).toBe(false)
    expect(rows.get('purge/young')).toMatchObject({ deleted: true, version: youngDel.json.version })
    expect(rows.get('purge/live')).toMatchObject({ deleted: false, value: 'stays' })

    // Act: the PUT that preceded the purged DELETE arrives again, exactly as the API published it;
    // so does the PUT that preceded the young DELETE.
    await publishRaw(fs.target.amqpUrl, fs.target.addQueue, [
      encodeWrite('purge/old', 'first', BigInt(put.json.version as string)),
      encodeWrite('purge/young', 'v', BigInt(youngPut.json.version as string)),
    ])
    await drained()

    // Assess: neither key came back, by the record or through the API (cache included).
    rows = await readRows(fs.config.databaseUrl, 'purge/')
    expect(rows.has('purge/old')).toBe(false)
    expect(rows.get('purge/young')).toMatchObject({ deleted: true })
    expect((await api('GET', '/api?key=purge%2Fold')).status).toBe(404)
    expect((await api('GET', '/api?key=purge%2Fyoung')).status).toBe(404)
    expect((await api('GET', '/api?key=purge%2Fold')).status).toBe(404) // second read: from the cache's negative entry

    // A new write after the purge creates the key again: purging forgot the tombstone, not the key.
    const again = await api('PUT', '/api', { key: 'purge/old', value: 'second' })
    expect(again.status).toBe(200)
    await drained()
    const read = await api('GET', '/api?key=purge%2Fold')
    expect(read).toMatchObject({ status: 200, json: { data: { key: 'purge/old', value: 'second' }, version: again.json.version } })
  }, 60_000)
})
