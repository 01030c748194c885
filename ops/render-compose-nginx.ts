/**
 * `npm run nginx:compose`: writes compose/nginx.conf, nginx/kvarc.conf.template
 * rendered with compose's values (ops/nginx-config.ts). Run it after editing the
 * template; test/deploy/nginx.test.ts fails while the committed file differs.
 * A development tool, run through tsx: the file it writes is committed.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderComposeNginx } from './nginx-config.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const file = join(root, 'compose', 'nginx.conf')
const rendered = renderComposeNginx(root)
let current: string | undefined
try {
  current = readFileSync(file, 'utf8')
} catch { /* first rendering */ }
if (current === rendered) {
  console.log('compose/nginx.conf is current')
} else {
  writeFileSync(file, rendered)
  console.log('compose/nginx.conf rendered from nginx/kvarc.conf.template')
}
