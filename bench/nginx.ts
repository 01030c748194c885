/**
 * nginx in front of the bench's own servers (the baseline pair, the sandbox
 * pair), rendered from the stack's own template (nginx/kvarc.conf.template,
 * ops/nginx-config.ts) with the stack's defaults: every side pays exactly the
 * same proxy cost, except for the per-token write limit (below).
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { renderNginxConfig } from '../ops/nginx-config.js'
import { startProcess, waitForPort, type Managed } from './procs.js'

const ROOT = resolve(import.meta.dirname, '..')

/**
 * nginx's writes per bearer token a second on every side the bench starts
 * (KVARC_WRITES_PER_TOKEN for the stack): with --auth, all of wrk's requests
 * carry one token, and the default 5,000/s would cap PUT at the limiter. The
 * bench measures the token check's cost, not the limiter; the limiter still
 * runs, alike on every side.
 */
export const BENCH_WRITES_PER_TOKEN = 1_000_000

export function nginxConfig(options: { dir: string, port: number, upstreams: number[] }): string {
  const template = readFileSync(join(ROOT, 'nginx/kvarc.conf.template'), 'utf8')
  return renderNginxConfig(template, {
    prefix: options.dir, listen: `127.0.0.1:${options.port}`, upstreams: options.upstreams.map(port => `127.0.0.1:${port}`),
    publicDir: join(ROOT, 'public'), errorLog: join(options.dir, 'error.log'), accessLog: 'off', workers: 'auto',
    writesPerToken: BENCH_WRITES_PER_TOKEN,
  })
}

/** Starts nginx (foreground, its own prefix dir) and waits until it listens. */
export async function startNginx(options: { dir: string, port: number, upstreams: number[] }): Promise<Managed> {
  mkdirSync(options.dir, { recursive: true })
  // nginx's workers drop root privileges (to nobody): they must reach the temp paths.
  chmodSync(options.dir, 0o755)
  const conf = join(options.dir, 'nginx.conf')
  writeFileSync(conf, nginxConfig(options))
  const nginx = startProcess('nginx', 'nginx', ['-p', options.dir, '-e', join(options.dir, 'error.log'), '-c', conf])
  try {
    await waitForPort(options.port, 10_000, nginx.child)
  } catch (error) {
    await nginx.stop()
    throw new Error(`nginx did not start: ${(error as Error).message}\n${nginx.tail()}`)
  }
  return nginx
}
