/**
 * The API's OpenAPI document as public/ ships it: a valid OpenAPI 3.1 document
 * whose schemas compile and whose examples match them, the rendering of
 * docs/openapi.yaml and of the locked swagger-ui-dist (scripts/build-docs.mjs),
 * naming every API route and method the catch-all knows. How it is served is
 * tested end to end (test/e2e/stack.e2e.test.ts, test/sandbox/sandbox.e2e.test.ts).
 */
import SwaggerParser from '@apidevtools/swagger-parser'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { docsOutputs, RENDERER_DIR } from '../../scripts/build-docs.mjs'
import { API_ROUTES } from '../../src/http/any-catchall/routes.js'
import { compileAllSchemas, documentedMethods, openapi, resolveRef, schemaProblem } from '../support/openapi.js'

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))))

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter(e => e.isFile()).map(e => relative(ROOT, join(e.parentPath, e.name))).sort()
}

describe('public/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(openapi.openapi).toMatch(/^3\.1\.\d+$/)
    // validate() dereferences in place: give it a copy.
    await expect(SwaggerParser.validate(structuredClone(openapi) as never)).resolves.toBeTruthy()
  })

  it('holds only schemas that compile in strict mode', () => {
    expect(compileAllSchemas()).toBeGreaterThan(50)
  })

  it('is docs/openapi.yaml, and public/docs/swagger-ui/ is the locked swagger-ui-dist (run node scripts/build-docs.mjs after changing either)', async () => {
    const outputs = await docsOutputs(ROOT)
    for (const [path, bytes] of outputs) {
      expect((await readFile(join(ROOT, path))).equals(bytes), path).toBe(true)
    }
    const rendererFiles = [...outputs.keys()].filter(path => path.startsWith(`${RENDERER_DIR}/`)).sort()
    expect(await filesUnder(join(ROOT, RENDERER_DIR))).toEqual(rendererFiles)
  })

  it('documents every API route with exactly the methods app.arc declares (the catch-all\'s table)', () => {
    const apiPaths = Object.keys(openapi.paths).filter(path => path === '/api' || path.startsWith('/api/')).sort()
    expect(apiPaths).toEqual(Object.keys(API_ROUTES).sort())
    for (const [path, methods] of Object.entries(API_ROUTES)) {
      expect(documentedMethods(path)?.sort(), path).toEqual([...methods].sort())
    }
  })

  it('has the package\'s version', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }
    expect(openapi.info.version).toBe(pkg.version)
  })

  it('gives examples that their own schemas accept', () => {
    const problems: string[] = []
    const check = (where: string, content: Record<string, any> | undefined) => {
      for (const [type, media] of Object.entries(content ?? {})) {
        if (media.example === undefined) continue
        const problem = schemaProblem(media.schema, media.example)
        if (problem) problems.push(`${where} ${type}: ${problem}`)
      }
    }
    for (const [path, item] of Object.entries(openapi.paths as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(item)) {
        check(`${method} ${path} request`, operation.requestBody && resolveRef(operation.requestBody).content)
        for (const [status, response] of Object.entries(operation.responses as Record<string, any>)) {
          check(`${method} ${path} ${status}`, resolveRef(response).content)
        }
      }
    }
    expect(problems).toEqual([])
  })
})

describe('public/docs/', () => {
  it('loads only its own files: no inline script or style, nothing from another origin', async () => {
    const html = await readFile(join(ROOT, 'public', 'docs', 'index.html'), 'utf8')
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/i)
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i)
    const urls = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map(m => m[1]!)
    expect(urls.length).toBeGreaterThan(0)
    for (const url of urls) expect(url, url).toMatch(/^\/(?!\/)/)
    const css = await readFile(join(ROOT, RENDERER_DIR, 'swagger-ui.css'), 'utf8')
    expect(css).not.toMatch(/url\(\s*["']?data:/)
  })
})
