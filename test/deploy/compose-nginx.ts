/**
 * compose/nginx.conf run by this machine's nginx: the committed file with only
 * compose's addresses and the nginx image's paths swapped for local ones
 * (ops/nginx-config.ts composeNginxValues), so the tests run exactly what
 * compose runs. `dir` must be reachable by nginx's workers (chmod 0755).
 */
import { expect } from 'vitest'

export function localCompose(conf: string, local: { dir: string, listen: string, upstreams: number[], html: string }): string {
  const [a, b] = local.upstreams
  const site = conf
    .replace('server platform-a:8080', `server 127.0.0.1:${a}`)
    .replace(/ *server platform-b:8080[^\n]*\n/, line => b === undefined ? '' : line.replace('platform-b:8080', `127.0.0.1:${b}`))
    .replace('listen 8080;', `listen ${local.listen};`)
    .replaceAll('/usr/share/nginx/html', local.html)
    .replaceAll('/var/cache/nginx', local.dir)
    .replaceAll('/var/log/nginx', local.dir)
  // Nothing of compose's network or the image's file system is left.
  expect(site).not.toMatch(/platform-[ab]|8080|\/usr\/share|\/var\//)
  return site
}
