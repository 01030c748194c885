/**
 * GET /api/all?prefix=&limit=&cursor= — one bounded page of live keys, in byte
 * order: only keys the token may read (scoped.ts).
 */
import { authenticate, readableRanges } from '../../shared/auth.js'
import { getConfig } from '../../shared/config.js'
import { ServiceUnavailableError, ValidationError } from '../../shared/errors.js'
import { json, parseQuery, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../../shared/limits.js'
import { openLister } from '../../shared/open-reader.js'
import { decodeCursor, encodeCursor, parseLimit } from './paging.js'
import { listReadable } from './scoped.js'

const clients = warm(() => openLister(getConfig()))

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const principal = await authenticate(clients().auth, event)
  const query = parseQuery(event)
  for (const name of query.keys()) {
    if (name !== 'prefix' && name !== 'limit' && name !== 'cursor') {
      throw new ValidationError(`unknown query parameter ${JSON.stringify(name)}: use prefix, limit and cursor`)
    }
  }
  const prefix = query.get('prefix') ?? ''
  if (!prefix.isWellFormed() || prefix.includes('\u0000')) throw new ValidationError('prefix must be valid Unicode without NUL characters')
  const limit = parseLimit(query.get('limit'), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
  const cursor = query.get('cursor')
  const after = cursor === undefined ? '' : decodeCursor(cursor)

  let page: Awaited<ReturnType<typeof listReadable>>
  try {
    page = await listReadable(await clients().db(), readableRanges(principal.rules, prefix), after, limit)
  } catch (error) {
    throw new ServiceUnavailableError('the database is unavailable; retry shortly', { cause: error })
  }
  const last = page.rows[page.rows.length - 1]
  return json(200, { data: page.rows, next: page.more && last ? encodeCursor(last.key) : null })
})
