/**
 * Serves the `@static` folder (public/) when no nginx stands in front of the
 * host: GET and HEAD only, `/` and directories answer their index.html, and
 * nothing outside the folder is ever reachable (no `..`, no NUL, no symlink
 * escape). Files are revalidated by the browser (no-cache + Last-Modified), so
 * an edited form shows up on reload.
 */
import { createReadStream, realpathSync } from 'node:fs'
import { realpath, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join, sep } from 'node:path'

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
}

export function contentTypeOf(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream'
}

export interface StaticFiles {
  /**
   * Answers the request from the folder and resolves true; resolves false,
   * having written nothing, when no file matches (the caller answers).
   */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string, closeConnection: boolean): Promise<boolean>
}

/**
 * The file a URL path names inside `root`, or undefined when the path is not a
 * clean relative path (encoded NUL, bad percent-encoding, `..` segments).
 */
export function resolveInside(root: string, pathname: string): string | undefined {
  let decoded: string
  try {
    decoded = decodeURIComponent(pathname)
  } catch {
    return undefined
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined
  const segments = decoded.split('/')
  if (segments.some(s => s === '..' || s === '.')) return undefined
  const file = join(root, ...segments.filter(s => s !== ''))
  return file === root || file.startsWith(root + sep) ? file : undefined
}

/** `extraHeaders` go with every file (and its 304): an app's Content-Security-Policy, for one. */
export function createStaticFiles(folder: string, extraHeaders: Readonly<Record<string, string>> = {}): StaticFiles {
  let root: string
  try {
    root = realpathSync(folder)
  } catch {
    throw new Error(`static folder ${folder} does not exist`)
  }

  async function locate(pathname: string): Promise<{ file: string, size: number, mtime: Date } | undefined> {
    let file = resolveInside(root, pathname)
    if (!file) return undefined
    try {
      let info = await stat(file)
      if (info.isDirectory()) {
        file = join(file, 'index.html')
        info = await stat(file)
      }
      if (!info.isFile()) return undefined
      // A symlink inside the folder must not lead out of it.
      const real = await realpath(file)
      if (real !== root && !real.startsWith(root + sep)) return undefined
      return { file: real, size: info.size, mtime: info.mtime }
    } catch {
      return undefined
    }
  }

  return {
    async serve(req, res, pathname, closeConnection) {
      const found = await locate(pathname)
      if (!found) return false
      const lastModified = new Date(Math.floor(found.mtime.getTime() / 1000) * 1000)
      const since = req.headers['if-modified-since']
      const headers: Record<string, string> = {
        'content-type': contentTypeOf(found.file),
        'cache-control': 'no-cache',
        'last-modified': lastModified.toUTCString(),
        'x-content-type-options': 'nosniff',
        ...extraHeaders,
      }
      if (closeConnection) headers.connection = 'close'
      if (since && !Number.isNaN(Date.parse(since)) && Date.parse(since) >= lastModified.getTime()) {
        res.writeHead(304, headers)
        res.end()
        return true
      }
      headers['content-length'] = String(found.size)
      res.writeHead(200, headers)
      if (req.method === 'HEAD') {
        res.end()
        return true
      }
      await new Promise<void>(resolve => {
        const stream = createReadStream(found.file)
        stream.on('error', () => { res.destroy(); resolve() })
        stream.on('end', resolve)
        res.on('close', () => { stream.destroy(); resolve() })
        stream.pipe(res)
      })
      return true
    },
  }
}
