/**
 * The token check alone, in this process: what the hosts run per request
 * (authenticate() with the token's look-up cached, then requireAccess()),
 * timed in batches against the same calls with auth off. Free of the network,
 * nginx and the machine's other load that move the stack's figures, so it
 * bounds what the check can cost whatever the end-to-end comparison says.
 */
import { authenticate, newToken, requireAccess, TokenVerifier, type AuthDeps } from '../src/shared/auth.js'
import type { HttpEvent } from '../src/shared/http.js'
import type { Queryable } from '../src/shared/postgres.js'

export interface CheckCost {
  calls: number
  batches: number
  /** Median over the batches of µs per call: auth required (cached look-up), auth off, and their difference. */
  requiredUs: number
  offUs: number
  costUs: number
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export async function measureCheck(options: { calls: number, batches: number }): Promise<CheckCost> {
  const fresh = newToken()
  const row = { name: 'bench', secret_hash: fresh.secretHash, rules: [{ prefix: '', access: 'readwrite' }], admin: false }
  // The token table's answer, as the hosts' pool would give it; looked up once, then cached (as in a run, bar one query per host every KVARC_TOKEN_CACHE_MS).
  const db = { query: async () => ({ rows: [row], rowCount: 1 }) } as unknown as Queryable
  const tokens = new TokenVerifier(async () => db, 3_600_000)
  const required: AuthDeps = { mode: 'required', tokens }
  const off: AuthDeps = { mode: 'off', tokens }
  const event = { headers: { authorization: `Bearer ${fresh.token}` } } as unknown as HttpEvent
  const batch = async (deps: AuthDeps) => {
    const started = process.hrtime.bigint()
    for (let i = 0; i < options.calls; i++) requireAccess(await authenticate(deps, event), 'hit-1', i % 2 ? 'read' : 'write')
    return Number(process.hrtime.bigint() - started) / 1000 / options.calls
  }
  // One unmeasured batch each, so both run optimized code.
  await batch(required)
  await batch(off)
  const requiredUs: number[] = []
  const offUs: number[] = []
  // Interleaved, as the bench's sides are: drift in the machine's load hits both alike.
  for (let b = 0; b < options.batches; b++) {
    requiredUs.push(await batch(required))
    offUs.push(await batch(off))
  }
  const costs = requiredUs.map((r, i) => r - offUs[i]!)
  return { calls: options.calls, batches: options.batches, requiredUs: median(requiredUs), offUs: median(offUs), costUs: median(costs) }
}
