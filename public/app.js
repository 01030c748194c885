// The kvarc form. Plain script, no build step and no dependencies, so it works
// offline and behind any static host. User data reaches the page only through
// textContent / attribute setters, never as HTML.
'use strict'

;(() => {
  const $ = id => document.getElementById(id)

  // Relative to the page, so the form also works when mounted under a path (an API Gateway stage).
  const apiUrl = (path, params) => {
    const url = new URL(path, document.baseURI)
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null) url.searchParams.set(name, value)
    }
    return url
  }

  /** A failed request, with a message meant for a person. */
  class ApiError extends Error {
    constructor (message, status) {
      super(message)
      this.status = status
    }
  }

  const REQUEST_TIMEOUT_MS = 15000

  /** One API call: JSON in and out; every failure becomes an ApiError with plain words. */
  async function api (method, url, body) {
    let response
    try {
      response = await fetch(url, {
        method,
        cache: 'no-store',
        headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })
    } catch (error) {
      if (error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
        throw new ApiError(`The server did not answer within ${REQUEST_TIMEOUT_MS / 1000} seconds. Try again.`, 0)
      }
      throw new ApiError('Cannot reach the kvarc server. Check that it is running and try again.', 0)
    }
    const text = await response.text().catch(() => '')
    let data
    try {
      data = text === '' ? undefined : JSON.parse(text)
    } catch {
      data = undefined
    }
    if (response.ok) {
      if (data === undefined) throw new ApiError(`The server answered ${describe(response)} without a JSON body.`, response.status)
      return data
    }
    if (data && typeof data.detail === 'string' && data.detail !== '') throw new ApiError(capitalise(data.detail) + '.', response.status)
    if (data && Array.isArray(data.detail)) throw new ApiError(capitalise(data.detail.map(d => d && d.msg).filter(Boolean).join('; ') || 'invalid request') + '.', response.status)
    const retry = response.headers.get('retry-after')
    throw new ApiError(`The server answered ${describe(response)}${data === undefined ? ' with something that is not JSON' : ''}.` +
      (retry ? ` Try again in ${retry} s.` : ''), response.status)
  }

  const describe = response => `${response.status}${response.statusText ? ' ' + response.statusText : ''}`
  const capitalise = text => text.charAt(0).toUpperCase() + text.slice(1).replace(/[.\s]+$/, '')

  /** Sets a status line: plain text plus a state the style (and tests) can key on. */
  function setStatus (element, state, text) {
    element.dataset.state = state
    element.textContent = text
  }

  const short = (text, max) => (text.length > max ? text.slice(0, max - 1) + '…' : text)

  const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

  const newer = (a, b) => {
    try {
      return BigInt(a) >= BigInt(b)
    } catch {
      return a === b
    }
  }

  // Polling after a write: short first waits (the consumer usually applies within
  // milliseconds), growing to 1 s; at most 36 reads over about 30 s, then the page
  // says the write is still queued (a consumer in a backoff during an outage).
  const POLL_DELAYS_MS = [40, 80, 150, 250, 400, 600, 800, ...Array(29).fill(1000)]

  /**
   * Waits until a GET shows the write: `check` gets the GET outcome and answers
   * a final message, or undefined to keep waiting. Stops early when `stale()`.
   */
  async function waitApplied (key, check, stale) {
    for (const delay of POLL_DELAYS_MS) {
      await sleep(delay)
      if (stale()) return undefined
      let outcome
      try {
        outcome = { found: true, data: await api('GET', apiUrl('api', { key })) }
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) outcome = { found: false }
        else continue // a transient failure while polling is not the write's failure
      }
      if (stale()) return undefined
      const done = check(outcome)
      if (done) return done
    }
    return undefined
  }

  /** Each form's latest submission wins: an older one still polling stops updating the page. */
  function latest () {
    let generation = 0
    return () => {
      const mine = ++generation
      return () => mine !== generation
    }
  }

  // Put
  const putForm = $('put-form')
  const putStatus = $('put-status')
  const putTurn = latest()
  putForm.addEventListener('submit', async event => {
    event.preventDefault()
    const stale = putTurn()
    const key = $('put-key').value
    const value = $('put-value').value
    setStatus(putStatus, 'busy', 'Sending…')
    let version
    try {
      ({ version } = await api('PUT', apiUrl('api'), { key, value }))
    } catch (error) {
      if (!stale()) setStatus(putStatus, 'error', error.message)
      return
    }
    if (stale()) return
    setStatus(putStatus, 'queued', `Queued (version ${version}); waiting for it to be applied…`)
    const done = await waitApplied(key, outcome => {
      if (!outcome.found) return undefined
      if (outcome.data.version === version) return `Applied (version ${version}).`
      if (newer(outcome.data.version, version)) return `Applied; since overwritten by a newer write (version ${outcome.data.version}).`
      return undefined
    }, stale)
    if (stale()) return
    if (done) setStatus(putStatus, 'applied', done)
    else setStatus(putStatus, 'queued', `Queued (version ${version}), not applied yet: the consumers may be behind or stopped. It is safe in the queue; check later with Get.`)
  })

  // Ctrl+Enter / Cmd+Enter in the value submits; plain Enter stays a newline.
  $('put-value').addEventListener('keydown', event => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault()
      putForm.requestSubmit()
    }
  })

  // Get
  const getStatus = $('get-status')
  const getResult = $('get-result')
  const getTurn = latest()
  $('get-form').addEventListener('submit', async event => {
    event.preventDefault()
    const stale = getTurn()
    const key = $('get-key').value
    setStatus(getStatus, 'busy', 'Reading…')
    try {
      const answer = await api('GET', apiUrl('api', { key }))
      if (stale()) return
      const source = $('get-source')
      source.textContent = answer.source
      source.dataset.source = answer.source
      $('get-version').textContent = answer.version
      $('get-value').textContent = answer.data.value
      getResult.hidden = false
      const size = new Blob([answer.data.value]).size
      setStatus(getStatus, 'found', `Found ${JSON.stringify(short(key, 60))}: ${size} byte${size === 1 ? '' : 's'}, from ${answer.source}.`)
    } catch (error) {
      if (stale()) return
      getResult.hidden = true
      setStatus(getStatus, 'error', error.status === 404 ? `${error.message.replace(/\.$/, '')}: ${JSON.stringify(short(key, 60))}.` : error.message)
    }
  })

  // Delete
  const deleteStatus = $('delete-status')
  const deleteTurn = latest()
  $('delete-form').addEventListener('submit', async event => {
    event.preventDefault()
    const stale = deleteTurn()
    const key = $('delete-key').value
    setStatus(deleteStatus, 'busy', 'Sending…')
    let version
    try {
      ({ version } = await api('DELETE', apiUrl('api', { key })))
    } catch (error) {
      if (!stale()) setStatus(deleteStatus, 'error', error.message)
      return
    }
    if (stale()) return
    setStatus(deleteStatus, 'queued', `Queued (version ${version}); waiting for it to be applied…`)
    const done = await waitApplied(key, outcome => {
      if (!outcome.found) return `Applied: ${JSON.stringify(short(key, 60))} is deleted (version ${version}).`
      if (outcome.data.version !== version && newer(outcome.data.version, version)) {
        return `Applied; since written again by a newer write (version ${outcome.data.version}).`
      }
      return undefined
    }, stale)
    if (stale()) return
    if (done) setStatus(deleteStatus, 'applied', done)
    else setStatus(deleteStatus, 'queued', `Queued (version ${version}), not applied yet: the consumers may be behind or stopped. It is safe in the queue; check later with Get.`)
  })

  // List
  const listStatus = $('list-status')
  const listTable = $('list-table')
  const listRows = $('list-rows')
  const listMore = $('list-more')
  const listTurn = latest()
  let listing = { prefix: '', limit: '20', next: null, count: 0 }

  const VALUE_PREVIEW = 160

  /** Appends rows; returns the first new row's button, so "load more" can move focus there. */
  function appendRows (rows) {
    let firstButton = null
    const fragment = document.createDocumentFragment()
    for (const row of rows) {
      const tr = document.createElement('tr')
      const keyCell = document.createElement('td')
      const open = document.createElement('button')
      open.type = 'button'
      open.className = 'link'
      open.textContent = row.key
      open.title = 'Get this key'
      open.addEventListener('click', () => {
        $('get-key').value = row.key
        $('get-form').requestSubmit()
      })
      keyCell.append(open)
      firstButton ??= open
      const valueCell = document.createElement('td')
      valueCell.className = 'preview'
      valueCell.textContent = short(row.value ?? '', VALUE_PREVIEW)
      if ((row.value ?? '').length > VALUE_PREVIEW) valueCell.title = row.value.slice(0, 4000)
      tr.append(keyCell, valueCell)
      fragment.append(tr)
    }
    listRows.append(fragment)
    return firstButton
  }

  async function loadPage (first) {
    const stale = listTurn()
    setStatus(listStatus, 'busy', 'Loading…')
    listMore.disabled = true
    try {
      const answer = await api('GET', apiUrl('api/all', {
        prefix: listing.prefix === '' ? undefined : listing.prefix,
        limit: listing.limit,
        cursor: first ? undefined : listing.next,
      }))
      if (stale()) return
      if (first) listRows.replaceChildren()
      const firstNew = appendRows(answer.data)
      listing.count += answer.data.length
      listing.next = answer.next ?? null
      listTable.hidden = listing.count === 0
      listMore.hidden = listing.next === null
      // "Load more" may vanish under the keyboard focus; put focus on what was loaded instead.
      if (!first && firstNew) firstNew.focus()
      const scope = listing.prefix === '' ? '' : ` starting with ${JSON.stringify(short(listing.prefix, 60))}`
      setStatus(listStatus, 'done', listing.count === 0
        ? `No keys${scope}.`
        : `Showing ${listing.count} key${listing.count === 1 ? '' : 's'}${scope}${listing.next === null ? '.' : '; more available.'}`)
    } catch (error) {
      if (!stale()) setStatus(listStatus, 'error', error.message)
    } finally {
      if (!stale()) listMore.disabled = false
    }
  }

  $('list-form').addEventListener('submit', event => {
    event.preventDefault()
    listing = { prefix: $('list-prefix').value, limit: $('list-limit').value, next: null, count: 0 }
    loadPage(true)
  })
  listMore.addEventListener('click', () => {
    if (listing.next !== null) loadPage(false)
  })
})()
