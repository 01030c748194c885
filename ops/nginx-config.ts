/**
 * kvarc's one nginx configuration, nginx/kvarc.conf.template, and the two
 * places it runs: `npm start` renders it per stack into a temporary prefix
 * (ops/stack.ts), and compose/nginx.conf is the same template rendered once
 * with the compose service names (`npm run nginx:compose` writes it; a test
 * fails when the committed file differs from a fresh rendering).
 *
 * @example
 *   renderNginxConfig(readNginxTemplate(root), composeNginxValues)
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { MAX_BODY_BYTES } from '../src/shared/limits.js'
import { CONTENT_SECURITY_POLICY } from '../src/shared/security-headers.js'

export interface NginxConfigValues {
  /** Folder of nginx's pid file and temp paths; the workers must be able to reach it. */
  prefix: string
  /** The `listen` address: `8080`, `127.0.0.1:8080`, `[::1]:8080`. */
  listen: string
  /** The HTTP hosts, `host:port` each. */
  upstreams: readonly string[]
  /** The static form (public/), as nginx sees it. */
  publicDir: string
  /** The error log's file. */
  errorLog: string
  /** The access log's file, or `off` (per-request logging costs throughput). */
  accessLog: string
  workers: number | 'auto'
  /** Writes (PUT, DELETE) a second per client address and per bearer token; bursts of twice that pass. */
  writesPerAddress?: number
  writesPerToken?: number
  /** Limit clients on loopback per address too (by default only remote addresses are). */
  limitLoopback?: boolean
}

/** Defaults: far above what one person or app sends, far below a flood. */
export const DEFAULT_WRITES_PER_ADDRESS = 2000
export const DEFAULT_WRITES_PER_TOKEN = 5000

/** The template, as committed. */
export function readNginxTemplate(root: string): string {
  return readFileSync(join(root, 'nginx', 'kvarc.conf.template'), 'utf8')
}

/** Fills nginx/kvarc.conf.template; every placeholder must be known, so a template typo fails here, not in nginx. */
export function renderNginxConfig(template: string, values: NginxConfigValues): string {
  const vars: Record<string, string> = {
    PREFIX: values.prefix,
    LISTEN: values.listen,
    PUBLIC_DIR: values.publicDir,
    MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    ERROR_LOG: values.errorLog,
    ACCESS_LOG: values.accessLog === 'off' ? 'off' : `${values.accessLog} kvarc`,
    WORKER_PROCESSES: String(values.workers),
    WRITES_PER_ADDRESS: String(values.writesPerAddress ?? DEFAULT_WRITES_PER_ADDRESS),
    WRITES_PER_ADDRESS_BURST: String(2 * (values.writesPerAddress ?? DEFAULT_WRITES_PER_ADDRESS)),
    WRITES_PER_TOKEN: String(values.writesPerToken ?? DEFAULT_WRITES_PER_TOKEN),
    WRITES_PER_TOKEN_BURST: String(2 * (values.writesPerToken ?? DEFAULT_WRITES_PER_TOKEN)),
    LOOPBACK_EXEMPT: values.limitLoopback ? '0' : '1',
    CONTENT_SECURITY_POLICY,
    // One failure takes a host out for 2 s: a killed host costs one retried request, not one per request.
    UPSTREAM_SERVERS: values.upstreams.map(address => `    server ${address} max_fails=1 fail_timeout=2s;`).join('\n'),
  }
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (_, name: string) => {
    const value = vars[name]
    if (value === undefined) throw new Error(`nginx template: unknown placeholder {{${name}}}`)
    return value
  })
}

/**
 * compose/kvarc-stack.yml's nginx: the official image (nginx:1.27) with the
 * rendering mounted as /etc/nginx/nginx.conf. Its paths are the image's own:
 * /var/cache/nginx belongs to the `nginx` user its workers run as, and
 * /var/log/nginx/{error,access}.log lead to the container's stderr and stdout
 * (`docker compose logs nginx`). The hosts are the compose services, by name.
 */
export const composeNginxValues: NginxConfigValues = Object.freeze({
  prefix: '/var/cache/nginx',
  listen: '8080',
  upstreams: Object.freeze(['platform-a:8080', 'platform-b:8080']),
  publicDir: '/usr/share/nginx/html',
  errorLog: '/var/log/nginx/error.log',
  accessLog: '/var/log/nginx/access.log',
  workers: 'auto',
})

/** The first lines of compose/nginx.conf, above the rendered template. */
export const COMPOSE_NGINX_HEADER = [
  '# GENERATED from nginx/kvarc.conf.template by `npm run nginx:compose`: edit the template, then',
  '# run that (test/deploy/nginx.test.ts fails while this file differs from a fresh rendering).',
  '# compose/kvarc-stack.yml mounts it as the nginx image\'s /etc/nginx/nginx.conf.',
  '',
  '',
].join('\n')

/** compose/nginx.conf's whole text, from the template under `root`. */
export function renderComposeNginx(root: string): string {
  return COMPOSE_NGINX_HEADER + renderNginxConfig(readNginxTemplate(root), composeNginxValues)
}
