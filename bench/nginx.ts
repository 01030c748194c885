/**
 * nginx in front of the bench's own servers (the baseline pair, the sandbox
 * pair): the same shape as the stack's — two workers, upstream keep-alive, no
 * access log — so every side pays the same proxy cost.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startProcess, waitForPort, type Managed } from './procs.js'

export function nginxConfig(options: { dir: string, port: number, upstreams: number[] }): string {
  const { dir, port, upstreams } = options
  return `worker_processes 2;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  client_max_body_size 2m;
  upstream api {
${upstreams.map(p => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 100000;
    location /api {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`
}

/** Starts nginx (foreground, its own prefix dir) and waits until it listens. */
export async function startNginx(options: { dir: string, port: number, upstreams: number[] }): Promise<Managed> {
  mkdirSync(options.dir, { recursive: true })
  const conf = join(options.dir, 'nginx.conf')
  writeFileSync(conf, nginxConfig(options))
  const nginx = startProcess('nginx', 'nginx', ['-p', options.dir, '-e', join(options.dir, 'error.log'), '-c', conf, '-g', 'daemon off;'])
  try {
    await waitForPort(options.port, 10_000, nginx.child)
  } catch (error) {
    await nginx.stop()
    throw new Error(`nginx did not start: ${(error as Error).message}\n${nginx.tail()}`)
  }
  return nginx
}
