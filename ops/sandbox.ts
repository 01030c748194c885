/**
 * `npm run sandbox`: Architect's sandbox on PORT (default 3333), bound to
 * KVARC_SANDBOX_HOST (default 127.0.0.1: sandbox alone would listen on every
 * interface), with the auth mode resolved as `npm start` does (auth-mode.ts).
 * Headers up to 64 KiB, as the warm hosts accept, so a valid key always fits.
 */
import { spawn } from 'node:child_process'
import { resolveAuthMode } from './auth-mode.js'

const host = process.env.KVARC_SANDBOX_HOST || '127.0.0.1'
let decision
try {
  decision = resolveAuthMode(process.env, host)
} catch (error) {
  console.error(`kvarc: ${(error as Error).message}`)
  process.exit(2)
}
console.log(`kvarc: ${decision.line}`)
const child = spawn('npx', ['arc', 'sandbox', '--port', process.env.PORT || '3333', '--host', host], {
  stdio: 'inherit',
  env: {
    ...process.env,
    KVARC_AUTH: decision.mode,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-http-header-size=65536`.trim(),
  },
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)))
