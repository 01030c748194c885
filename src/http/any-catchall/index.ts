/**
 * ANY /* — every request no other route takes (API Gateway's greedy
 * `ANY /{proxy+}`, sandbox's catch-all, the warm host's fallback). Declaring it
 * replaces Architect's static asset proxy, so it serves `@static` files itself
 * through @architect/asap (the proxy's own library: S3 on AWS, the local folder
 * under sandbox). Everything else gets JSON, never an HTML page: 405 with
 * `Allow` for a wrong method on an API path, 404 otherwise.
 */
import asap, { type AsapResult } from '@architect/asap'
import { getConfig } from '../../shared/config.js'
import { json, withHttpErrors, type HttpEvent, type HttpResult } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { errorThrottled } from '../../shared/log.js'
import { SECURITY_HEADERS } from '../../shared/security-headers.js'
import { methodsOn } from './routes.js'

const readStatic = warm((): (event: unknown) => Promise<AsapResult | null> => asap({ passthru: true }))

/** The static file the request names, or undefined when there is none (or no static store here). */
async function staticFile(event: HttpEvent): Promise<HttpResult | undefined> {
  // Unset on the warm platform: its hosts and nginx serve public/ before a request gets here.
  if (!getConfig().staticBucket) return undefined
  // asap joins the path onto the folder as is: under sandbox `..` would read files beside public/.
  const path = event.rawPath ?? ''
  if (path.split('/').some(segment => segment === '..' || segment === '.') || /[\\\0]/.test(path)) return undefined
  const found = await readStatic()(event)
  if (!found) return undefined
  if (found.statusCode >= 400) {
    // asap renders its errors (S3 unreachable, access denied) as HTML pages: keep them off the wire.
    errorThrottled(`static ${found.statusCode}`, { status: found.statusCode, path: event.rawPath }, 'static file could not be read')
    return json(502, { detail: 'the static files could not be read; retry shortly' })
  }
  return { ...found, headers: { ...found.headers, ...SECURITY_HEADERS } } as HttpResult
}

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const method = (event.requestContext?.http?.method ?? 'GET').toUpperCase()
  const path = event.rawPath ?? event.requestContext?.http?.path ?? '/'
  const allowed = methodsOn(path)
  if (allowed) {
    const allow = allowed.join(', ')
    return json(405, { detail: `method ${method} is not allowed on ${path}; use ${allow}` }, { allow })
  }
  if (method === 'GET' || method === 'HEAD') {
    const file = await staticFile(event)
    if (file) return file
  }
  return json(404, { detail: `no route for ${method} ${path}` })
})
