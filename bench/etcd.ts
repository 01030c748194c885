/**
 * etcd as a peer side: one member the bench starts itself (Debian's
 * etcd-server), on a data directory and free ports of its own on 127.0.0.1,
 * with etcd's defaults otherwise (its WAL is fsynced before a put is
 * answered). wrk reaches its v3 JSON gateway directly: kvarc and the baseline
 * sit behind nginx because each is two processes, while etcd is one server
 * that spreads over every core itself, so nginx would only add a hop.
 */
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { ETCD_MODES, type Scenario } from './load.js'
import { freePort, startProcess, waitForPort, type Managed } from './procs.js'
import type { Side } from './sides.js'

export const ETCD_MISSING = 'etcd is not installed (no /usr/bin/etcd, no etcd on PATH; on Debian: apt-get install -y etcd-server), so the bench runs without it'

/** Debian's /usr/bin/etcd, else the first etcd on PATH; undefined when there is none. */
export function etcdBinary(path = process.env.PATH ?? '', debian = '/usr/bin/etcd'): string | undefined {
  for (const candidate of [debian, ...path.split(delimiter).filter(Boolean).map(dir => join(dir, 'etcd'))]) {
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch { /* not here */ }
  }
  return undefined
}

export interface EtcdSide extends Side {
  /** What the member reports at /version, e.g. 3.4.23. */
  version: string
  /** The command line's flags, as the report states them. */
  flags: string[]
  dataDir: string
}

const base64 = (text: string) => Buffer.from(text).toString('base64')

async function post(url: string, path: string, body: unknown): Promise<unknown> {
  const response = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) })
  const text = await response.text()
  if (!response.ok) throw new Error(`etcd ${path}: ${response.status} ${text}`)
  return JSON.parse(text)
}

/** Resolves once the member has a leader and answers /health; etcd listens before it elected itself. */
async function waitForHealth(url: string, member: Managed, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const body = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) }).then(r => r.json() as Promise<{ health?: string }>).catch(() => undefined)
    if (body?.health === 'true') return
    if (member.child.exitCode !== null) throw new Error(`etcd exited (${member.child.exitCode}):\n${member.tail()}`)
    if (Date.now() > deadline) throw new Error(`etcd not healthy within ${timeoutMs} ms:\n${member.tail()}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** Starts one etcd member; close() stops it and removes its data directory. */
export async function startEtcdSide(binary: string): Promise<EtcdSide> {
  const dataDir = mkdtempSync(join(tmpdir(), 'kvarc-bench-etcd-'))
  let member: Managed | undefined
  const close = async () => {
    await member?.stop(10_000)
    rmSync(dataDir, { recursive: true, force: true })
  }
  try {
    const [clientPort, peerPort] = [await freePort(), await freePort()]
    const client = `http://127.0.0.1:${clientPort}`
    const peer = `http://127.0.0.1:${peerPort}`
    const flags = [
      '--name', 'bench', '--data-dir', join(dataDir, 'data'),
      '--listen-client-urls', client, '--advertise-client-urls', client,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `bench=${peer}`,
      // capnslog is deprecated in 3.4; warnings only, so a slow apply still shows in the tail.
      '--logger', 'zap', '--log-level', 'warn',
    ]
    member = startProcess('etcd', binary, flags)
    await waitForPort(clientPort, 30_000, member.child).catch(error => { throw new Error(`${error.message}\n${member!.tail()}`) })
    await waitForHealth(client, member, 30_000)
    const { etcdserver } = await fetch(`${client}/version`).then(r => r.json() as Promise<{ etcdserver: string }>)
    const running = member
    return {
      name: 'etcd',
      url: client,
      version: etcdserver,
      flags,
      dataDir,
      processes: () => running.child.pid !== undefined && running.child.exitCode === null && running.child.signalCode === null ? [{ name: 'etcd', pid: running.child.pid }] : [],
      loadMode(scenario: Scenario) {
        const mode = ETCD_MODES[scenario]
        if (!mode) throw new Error(`etcd does not run ${scenario}`)
        return mode
      },
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}

/** Puts per transaction: etcd's default --max-txn-ops. */
const TXN_OPS = 128
/** Bytes of values per transaction, well inside the 1.5 MiB etcd accepts in one request (--max-request-bytes), base64 included. */
const TXN_VALUE_BYTES = 512 * 1024

/**
 * Puts `<family><i>` for i < count with the value kvarc's sides hold
 * (`valueBytes` times "v"), in transactions of up to TXN_OPS puts, `inFlight`
 * at a time: get-hit needs them there, since etcd answers a missing key 200
 * as it answers a present one. One put per request took 20 s for 10,000 keys.
 */
export async function loadEtcdKeys(url: string, options: { family: string, count: number, valueBytes: number, inFlight?: number }): Promise<void> {
  const value = base64('v'.repeat(options.valueBytes))
  const perTxn = Math.max(1, Math.min(TXN_OPS, Math.floor(TXN_VALUE_BYTES / options.valueBytes)))
  let next = 0
  const worker = async () => {
    while (next < options.count) {
      const first = next
      next = Math.min(options.count, first + perTxn)
      const success = Array.from({ length: next - first }, (_, j) => ({ request_put: { key: base64(`${options.family}${first + j}`), value } }))
      await post(url, '/v3/kv/txn', { success })
    }
  }
  await Promise.all(Array.from({ length: options.inFlight ?? 8 }, worker))
}

/** How many keys start with `prefix` (a range up to the prefix with its last byte plus one). */
export async function countEtcdKeys(url: string, prefix: string): Promise<number> {
  const bytes = Buffer.from(prefix)
  const end = Buffer.from(bytes)
  end[end.length - 1] = bytes[bytes.length - 1]! + 1
  const body = await post(url, '/v3/kv/range', { key: bytes.toString('base64'), range_end: end.toString('base64'), count_only: true }) as { count?: string }
  // The gateway leaves out fields at their zero value: no count is none.
  return Number(body.count ?? 0)
}
