/**
 * The auth mode a stack or sandbox starts with (Redis's protected-mode idea):
 * KVARC_AUTH when set; otherwise off when it listens on loopback only (a
 * person's machine) and required on any other address. Either way one line
 * says which, and an explicit `off` on a reachable address says what it means.
 */
export function isLoopback(address: string): boolean {
  return address === 'localhost' || address === '::1' || /^127(\.\d{1,3}){3}$/.test(address)
}

export interface AuthDecision { mode: 'required' | 'off', line: string }

export function resolveAuthMode(env: Record<string, string | undefined>, listenHost: string): AuthDecision {
  const set = env.KVARC_AUTH
  const required = 'auth required: every API request needs Authorization: Bearer <token> (make one: npm run token -- create --name NAME --all)'
  if (set === 'required') return { mode: 'required', line: required }
  if (set === 'off') {
    return isLoopback(listenHost)
      ? { mode: 'off', line: 'auth off (KVARC_AUTH=off): any request may read and write every key' }
      : { mode: 'off', line: `auth OFF on ${listenHost} because KVARC_AUTH=off: anyone who reaches this address may read, overwrite and delete every key` }
  }
  if (set !== undefined && set !== '') throw new Error(`KVARC_AUTH must be required or off, got ${JSON.stringify(set)}`)
  return isLoopback(listenHost)
    ? { mode: 'off', line: `auth off: listening on ${listenHost} only (KVARC_AUTH=required to require tokens; any other address requires them)` }
    : { mode: 'required', line: required }
}
