/**
 * The etcd side for real: the bench's own member on its own ports and data
 * directory, keys loaded through the gateway, one second of wrk per scenario
 * it runs, and nothing left behind. Needs etcd (.ci/run installs etcd-server);
 * asserts on answers and clean-up, never on speed.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { countEtcdKeys, etcdBinary, loadEtcdKeys, startEtcdSide, type EtcdSide } from './etcd.js'
import { runLoad } from './load.js'
import { processTree } from './procs.js'

let side: EtcdSide | undefined

beforeAll(async () => {
  const binary = etcdBinary()
  if (!binary) throw new Error('etcd is required to test the bench\'s etcd side; on Debian: apt-get install -y etcd-server')
  side = await startEtcdSide(binary)
})

afterAll(() => side?.close())

async function valueOf(url: string, key: string): Promise<string | undefined> {
  const response = await fetch(`${url}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64') }) })
  const body = await response.json() as { kvs?: { value: string }[] }
  return body.kvs?.[0] && Buffer.from(body.kvs[0].value, 'base64').toString()
}

describe('the etcd side', () => {
  it('loads the get-hit keys with the bench\'s value, in transactions, and nothing else', async () => {
    // 300 keys: two full transactions of 128 and one of 44.
    await loadEtcdKeys(side!.url, { family: 'hit-', count: 300, valueBytes: 8, inFlight: 2 })
    expect(await countEtcdKeys(side!.url, 'hit-')).toBe(300)
    expect(await countEtcdKeys(side!.url, 'put-')).toBe(0)
    expect(await valueOf(side!.url, 'hit-0')).toBe('vvvvvvvv')
    expect(await valueOf(side!.url, 'hit-299')).toBe('vvvvvvvv')
    expect(await valueOf(side!.url, 'hit-300')).toBeUndefined()
  })

  it('loads large values in transactions etcd accepts', async () => {
    // Six values of 300 KB in one transaction would be over the 1.5 MiB etcd takes in a request.
    await loadEtcdKeys(side!.url, { family: 'big-', count: 6, valueBytes: 300_000 })
    expect(await countEtcdKeys(side!.url, 'big-')).toBe(6)
    expect((await valueOf(side!.url, 'big-5'))?.length).toBe(300_000)
  })

  it.each([['get-hit', 300], ['put', 1000]] as const)('%s: one second of wrk through the gateway, every answer 2xx', async (scenario, span) => {
    const result = await runLoad({ url: side!.url, scenario: side!.loadMode!(scenario), durationSeconds: 1, connections: 4, threads: 1, base: 0, span, valueBytes: 8 })
    expect(result.requests).toBeGreaterThan(0)
    expect([result.non2xx, result.errors]).toEqual([0, 0])
    if (scenario === 'put') {
      expect(await countEtcdKeys(side!.url, 'put-')).toBeGreaterThan(0)
      // Not put-0: wrk calls request() once before the run to check it, and that takes index 0.
      expect(await valueOf(side!.url, 'put-1')).toBe('vvvvvvvv')
    }
  })

  it('runs get-hit and put only', () => {
    expect(() => side!.loadMode!('delete')).toThrow(/etcd does not run delete/)
  })

  it('finds /usr/bin/etcd first, else an executable etcd on PATH', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvarc-etcd-path-'))
    try {
      const [debian, onPath, nowhere] = [join(dir, 'debian'), join(dir, 'path'), join(dir, 'none')]
      for (const d of [debian, onPath]) mkdirSync(d)
      expect(etcdBinary(onPath, nowhere)).toBeUndefined()
      writeFileSync(join(onPath, 'etcd'), '#!/bin/sh\n')
      // A file that is not executable is no etcd.
      expect(etcdBinary(onPath, nowhere)).toBeUndefined()
      chmodSync(join(onPath, 'etcd'), 0o755)
      expect(etcdBinary(`${nowhere}:${onPath}`, nowhere)).toBe(join(onPath, 'etcd'))
      writeFileSync(join(debian, 'etcd'), '#!/bin/sh\n', { mode: 0o755 })
      expect(etcdBinary(onPath, join(debian, 'etcd'))).toBe(join(debian, 'etcd'))
      expect(etcdBinary('', nowhere)).toBeUndefined()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('stops its member and removes its data directory on close', async () => {
    const [member] = side!.processes()
    const pid = member!.pid
    expect(processTree(pid)).not.toEqual([])
    expect(existsSync(side!.dataDir)).toBe(true)
    await side!.close()
    expect(processTree(pid)).toEqual([])
    expect(existsSync(side!.dataDir)).toBe(false)
    expect(side!.processes()).toEqual([])
  })
})
