// The kvarc form. Plain script, no build step and no dependencies, so it works
// offline and behind any static host. User data reaches the page only through
// textContent / attribute setters, never as HTML. No inline script or handler
// anywhere, so the page runs under a Content-Security-Policy without 'unsafe-inline'.
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

  // The API token. Kept in sessionStorage only: it lasts for this tab (a reload keeps it) and is
  // gone when the tab closes, unlike localStorage, which every tab shares and which outlives the
  // browser. Never put in a URL (it would reach history and server logs) and never logged.
  const TOKEN_KEY = 'kvarc.token'
  const tokenInput = $('token')
  const tokenStatus = $('token-status')
  const tokenShow = $('token-show')

  // Reading sessionStorage throws where the browser blocks storage; the token then lives in the field only.
  const session = (() => {
    try {
      const storage = window.sessionStorage
      storage.getItem(TOKEN_KEY)
      return storage
    } catch {
      return undefined
    }
  })()

  /** Keeps the field's token for this tab (or removes it when empty); false when the browser would not keep it. */
  function keepToken (value) {
    if (!session) return false
    try {
      if (value.trim() === '') session.removeItem(TOKEN_KEY)
      else session.setItem(TOKEN_KEY, value)
      return true
    } catch {
      return false
    }
  }

  /**
   * The token to send, from the field: { token } ('' for none), or { problem } in plain words when
   * it cannot be a token. A pasted "Bearer …" header value is accepted as its token.
   */
  function currentToken () {
    const token = tokenInput.value.trim().replace(/^Bearer\s+/i, '')
    // A header carries visible ASCII only: fetch would refuse anything else before sending.
    if (!/^[\x21-\x7e]*$/.test(token)) return { problem: 'The API token has spaces or characters a token never has: paste it again, exactly as npm run token printed it.' }
    return { token }
  }

  // Above the longest wait the page asks the server for (WRITE_WAIT_S), so a waiting answer is never cut off.
  const REQUEST_TIMEOUT_MS = 15000

  /**
   * One HTTP exchange, JSON in and out: resolves with the response and its parsed
   * body (undefined when it is not JSON) whatever the status; throws an ApiError
   * in plain words only when no answer came.
   */
  async function exchange (method, url, { body, headers } = {}) {
    const { token, problem: tokenProblem } = currentToken()
    // Nothing was sent: status null, so no caller takes it for a lost connection worth retrying.
    if (tokenProblem) throw new ApiError(tokenProblem, null)
    let response
    try {
      response = await fetch(url, {
        method,
        cache: 'no-store',
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token === '' ? {} : { authorization: `Bearer ${token}` }),
          ...headers,
        },
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
    return { response, data }
  }

  /**
   * What a failed (or bodiless) answer means, in plain words; `key` names the key a
   * refused token may not touch.
   */
  function problem (response, data, key) {
    if (response.ok) return new ApiError(`The server answered ${describe(response)} without a JSON body.`, response.status)
    const refused = refusedToken(response, data, key)
    if (refused) return new ApiError(refused, response.status)
    if (data && typeof data.detail === 'string' && data.detail !== '') return new ApiError(capitalise(data.detail) + '.', response.status)
    if (data && Array.isArray(data.detail)) return new ApiError(capitalise(data.detail.map(d => d && d.msg).filter(Boolean).join('; ') || 'invalid request') + '.', response.status)
    const retry = response.headers.get('retry-after')
    return new ApiError(`The server answered ${describe(response)}${data === undefined ? ' with something that is not JSON' : ''}.` +
      (retry ? ` Try again in ${retry} s.` : ''), response.status)
  }

  /** A 401 or a 403 for the token's scope, in plain words; undefined for any other answer. */
  function refusedToken (response, data, key) {
    const challenge = response.headers.get('www-authenticate') || ''
    if (response.status === 401) {
      // RFC 6750: the server names invalid_token when one was sent and not accepted.
      if (/error="?invalid_token/i.test(challenge) || currentToken().token) {
        return 'The token was not accepted: unknown, revoked or mistyped. Check the API token above, or make a new one with npm run token -- create …'
      }
      return 'This kvarc requires a token: paste one made with npm run token -- create … into the API token field above.'
    }
    const detail = data && typeof data.detail === 'string' ? data.detail : ''
    const scope = /^token ("[^"]*") may not (read|write)\b/.exec(detail)
    if (response.status !== 403 || !(scope || /insufficient_scope/i.test(challenge))) return undefined
    const which = key === undefined ? 'this key' : quoted(key)
    if (!scope) return `Your token may not do this to ${which}: its scope does not cover it.`
    const [, name, need] = scope
    return `Your token ${name} may not ${need} ${which}: its scope does not cover it. Use a token made with --${need} (or --readwrite) for a prefix of this key.`
  }

  /** One API call whose only good answer is a 2xx with JSON: resolves with the body, else throws in plain words. */
  async function api (method, url, options) {
    const { response, data } = await exchange(method, url, options)
    if (!response.ok || data === undefined) throw problem(response, data)
    return data
  }

  const describe = response => `${response.status}${response.statusText ? ' ' + response.statusText : ''}`
  const capitalise = text => text.charAt(0).toUpperCase() + text.slice(1).replace(/[.\s]+$/, '')

  /** Sets a status line: plain text plus a state the style (and tests) can key on. */
  function setStatus (element, state, text) {
    element.dataset.state = state
    element.textContent = text
  }

  const short = (text, max) => (text.length > max ? text.slice(0, max - 1) + '…' : text)
  const quoted = key => JSON.stringify(short(key, 60))

  const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

  // src/shared/validate.ts MAX_TTL_SECONDS: the longest life the server accepts.
  const MAX_TTL_SECONDS = 31536000

  /** The Put's TTL field: { seconds } (undefined when empty), or { problem } in plain words. */
  function parseTtl (text) {
    const trimmed = text.trim()
    if (trimmed === '') return { seconds: undefined }
    const seconds = /^\d+$/.test(trimmed) ? Number(trimmed) : NaN
    if (!(seconds >= 1 && seconds <= MAX_TTL_SECONDS)) {
      return { problem: `The TTL must be whole seconds from 1 to ${MAX_TTL_SECONDS.toLocaleString('en-US')} (a year), such as 60; leave it empty for a key that never expires.` }
    }
    return { seconds }
  }

  /** How long until a moment, roughly, in words. */
  function roughly (seconds) {
    if (seconds < 120) return `${seconds} s`
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h`
    return `${Math.round(seconds / 86400)} days`
  }

  /** An expiry (epoch seconds) in words: the moment in UTC, and how far off it is. */
  function expiryText (expiresAt) {
    const utc = new Date(expiresAt * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
    const left = Math.round(expiresAt - Date.now() / 1000)
    return `${utc} (${left > 0 ? `in ${roughly(left)}` : 'already passed'})`
  }

  const expiresNote = outcome => (typeof outcome.expiresAt === 'number' ? `; expires ${expiryText(outcome.expiresAt)}` : '')

  /** Each form's latest submission wins: an older one still waiting stops updating the page. */
  function latest () {
    let generation = 0
    return () => {
      const mine = ++generation
      return () => mine !== generation
    }
  }

  // What the page last learnt of each key, for "only if unchanged": { etag } from a Get (a
  // tombstone's too) or from this page's own applied write, or { absent: true } when a Get
  // found no such key and no ETag. Kept for the page's lifetime only.
  const known = new Map()

  /** The precondition headers of a write "only if unchanged"; undefined when the page knows nothing of the key. */
  function conditionFor (key) {
    const seen = known.get(key)
    if (seen === undefined) return undefined
    if (seen.etag) return { headers: { 'if-match': seen.etag }, kind: 'match', etag: seen.etag }
    return { headers: { 'if-none-match': '*' }, kind: 'absent' }
  }

  function conditionHint (key) {
    const condition = conditionFor(key)
    if (key === '') return 'Enter a key, then Get it first: the write will carry the version that Get showed.'
    if (condition === undefined) return `No ETag for ${quoted(key)} yet: Get it first.`
    if (condition.kind === 'absent') return `Sends If-None-Match: * — your last Get found no ${quoted(key)}, so the write applies only while it is still absent.`
    return `Sends If-Match: ${condition.etag} — the write applies only while ${quoted(key)} still has that version.`
  }

  // The server holds a write's answer until the consumer decided it, up to this long
  // (Prefer: wait; at most 10 s server-side). A write still queued then is followed
  // through its receipt: each look waits as long again, RECEIPT_TRIES looks in all
  // (about 30 s more), at least RECEIPT_SPACING_MS apart so a failing server is not hammered.
  const WRITE_WAIT_S = 5
  const RECEIPT_TRIES = 6
  const RECEIPT_SPACING_MS = 1000

  /**
   * Follows a receipt until the write is no longer queued. Resolves with the
   * receipt ({status, version, current, reason?}), { status: 'expired' }, or
   * undefined when it is still queued after RECEIPT_TRIES looks (or `stale()`).
   */
  async function followReceipt (receiptUrl, key, stale) {
    const url = new URL(receiptUrl)
    url.searchParams.set('wait', String(WRITE_WAIT_S))
    for (let tries = 0; tries < RECEIPT_TRIES; tries++) {
      const started = Date.now()
      try {
        const { response, data } = await exchange('GET', url)
        if (stale()) return undefined
        if (response.ok && data && typeof data.status === 'string' && data.status !== 'queued') return data
        if (response.status === 410) return { status: 'expired', detail: data && data.detail }
        // A receipt the server refuses to give (4xx) will not come by asking again.
        if (!response.ok && response.status >= 400 && response.status < 500 && response.status !== 429) throw problem(response, data, key)
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 0) throw error
        // No answer this time (the server restarting, a lost connection): the write is still queued; look again.
      }
      if (stale()) return undefined
      await sleep(RECEIPT_SPACING_MS - (Date.now() - started))
    }
    return undefined
  }

  /** The plain words for a write that did not apply because the key changed since the page read it. */
  function changedSinceRead (condition, current, what, version) {
    const now = current ? `current version ${current}` : 'it no longer exists'
    const how = condition && condition.kind === 'absent' ? 'The key was created since you read it' : 'The key changed since you read it'
    // A 412 decided at once (the cache already showed a newer version) never queued the write, so it has no version.
    const mine = version ? ` (version ${version})` : ''
    return `${how} (${now}), so this ${what}${mine} was not applied. Get it again to see what it holds, then retry.`
  }

  /**
   * Sends a put or delete and shows its real outcome, as the server reports it:
   * applied, superseded, rejected (a failed condition) or dead-lettered.
   */
  async function sendWrite ({ status, stale, what, key, method, url, body, conditional, applied }) {
    let condition
    if (conditional && key !== '') {
      condition = conditionFor(key)
      if (condition === undefined) {
        setStatus(status, 'error', `No ETag for ${quoted(key)} yet: Get it first. "Only if unchanged" sends the version your last Get of this key showed.`)
        return
      }
    }
    setStatus(status, 'busy', `Sending; waiting up to ${WRITE_WAIT_S} s for it to be applied…`)
    let answer
    try {
      answer = await exchange(method, url, { body, headers: { prefer: `wait=${WRITE_WAIT_S}`, ...(condition && condition.headers) } })
    } catch (error) {
      if (!stale()) setStatus(status, 'error', error.message)
      return
    }
    if (stale()) return
    const { response, data } = answer
    let outcome
    if (response.status === 412 && data && typeof data.detail === 'string') {
      // Either the consumer's decision (status "rejected") or the server's at once, when its cache already shows a newer version.
      outcome = { status: 'rejected', version: data.version, current: data.current ?? null, reason: data.detail }
    } else if (response.status === 422 && data && data.status === 'dead-lettered') {
      outcome = { status: 'dead-lettered', version: data.version, detail: data.detail }
    } else if (response.ok && data && typeof data.version === 'string' && typeof data.status === 'string') {
      outcome = data
    } else {
      setStatus(status, 'error', problem(response, data, key).message)
      return
    }

    if (outcome.status === 'queued') {
      const { version, expiresAt } = outcome
      setStatus(status, 'queued', `Queued (version ${version}); waiting for its outcome…`)
      // The Location of a 202 names the receipt; a server that ignored Prefer answers 200 without one.
      const location = response.headers.get('location')
      const receiptUrl = location ? new URL(location, response.url) : apiUrl('api/writes', { key, version })
      try {
        outcome = await followReceipt(receiptUrl, key, stale)
      } catch (error) {
        if (!stale()) setStatus(status, 'error', `Queued (version ${version}), but its outcome could not be read: ${error.message}`)
        return
      }
      if (stale()) return
      if (outcome === undefined) {
        setStatus(status, 'queued', `Queued (version ${version}), not applied yet: the consumers may be behind or stopped. It is safe in the queue; its outcome will be at ${receiptUrl.pathname}${receiptUrl.search}.`)
        return
      }
      if (outcome.status === 'expired') {
        setStatus(status, 'error', `Queued (version ${version}), but its outcome is no longer kept${outcome.detail ? ` (${outcome.detail})` : ''}. Get the key to see what it holds.`)
        return
      }
      outcome = { version, ...(expiresAt === undefined ? {} : { expiresAt }), ...outcome }
    }

    switch (outcome.status) {
      case 'applied':
        // The key now holds this write: a next "only if unchanged" write builds on it.
        known.set(key, { etag: `"${outcome.version}"` })
        refreshHints()
        setStatus(status, 'applied', applied(outcome.version, outcome))
        break
      case 'superseded':
        setStatus(status, 'superseded', `Superseded: a newer write (version ${outcome.current}) reached the key first, so this ${what} (version ${outcome.version}) was not applied.`)
        break
      case 'rejected':
        setStatus(status, 'rejected', `Rejected: ${(outcome.reason || 'the condition failed').replace(/[.\s]+$/, '')}. ${changedSinceRead(condition, outcome.current, what, outcome.version)}`)
        break
      case 'dead-lettered':
        setStatus(status, 'dead-lettered', `Dead-lettered: ${(outcome.detail || `the record refused this write: ${outcome.reason || 'no reason given'}`).replace(/[.\s]+$/, '')}. This ${what} (version ${outcome.version}) will never be applied.`)
        break
      default:
        setStatus(status, 'error', `The server answered an unknown outcome ${JSON.stringify(String(outcome.status))} for version ${outcome.version}.`)
    }
  }

  // The token field: filled from this tab's sessionStorage, kept there as it is typed.
  tokenInput.value = session ? session.getItem(TOKEN_KEY) ?? '' : ''
  if (tokenInput.value !== '') setStatus(tokenStatus, 'done', 'Using the token kept for this tab.')
  tokenInput.addEventListener('input', () => { keepToken(tokenInput.value) })
  // Said once the field is left (not at every keystroke, which a screen reader would read out each time).
  tokenInput.addEventListener('change', () => {
    const { token, problem: tokenProblem } = currentToken()
    if (tokenProblem) setStatus(tokenStatus, 'error', tokenProblem)
    else if (!keepToken(tokenInput.value)) setStatus(tokenStatus, 'error', 'This browser will not keep the token (storage is blocked): it is used until this page is reloaded or closed.')
    else if (token === '') setStatus(tokenStatus, 'done', 'No token: requests go without one.')
    else setStatus(tokenStatus, 'done', 'Token kept for this tab; sent with every request.')
  })
  function showToken (show) {
    tokenInput.type = show ? 'text' : 'password'
    tokenShow.textContent = show ? 'Hide token' : 'Show token'
  }
  tokenShow.addEventListener('click', () => showToken(tokenInput.type === 'password'))
  $('token-forget').addEventListener('click', () => {
    tokenInput.value = ''
    showToken(false)
    keepToken('')
    setStatus(tokenStatus, 'done', 'Token forgotten: requests go without one.')
  })
  // Enter in the field submits its form: nothing to send (the change event already kept the token), so no reload.
  $('token-form').addEventListener('submit', event => event.preventDefault())

  // "Only if unchanged": each form says what its next write would send.
  const conditionForms = [
    { box: $('put-if-unchanged'), keyInput: $('put-key'), hint: $('put-condition') },
    { box: $('delete-if-unchanged'), keyInput: $('delete-key'), hint: $('delete-condition') },
  ]
  function refreshHints () {
    for (const { box, keyInput, hint } of conditionForms) {
      hint.hidden = !box.checked
      hint.textContent = box.checked ? conditionHint(keyInput.value) : ''
    }
  }
  for (const { box, keyInput } of conditionForms) {
    box.addEventListener('change', refreshHints)
    keyInput.addEventListener('input', refreshHints)
  }
  refreshHints()

  // Put
  const putForm = $('put-form')
  const putStatus = $('put-status')
  const putTurn = latest()
  putForm.addEventListener('submit', event => {
    event.preventDefault()
    const stale = putTurn()
    const key = $('put-key').value
    const ttl = parseTtl($('put-ttl').value)
    if (ttl.problem) {
      setStatus(putStatus, 'error', ttl.problem)
      return
    }
    sendWrite({
      status: putStatus,
      stale,
      what: 'put',
      key,
      method: 'PUT',
      url: apiUrl('api'),
      body: { key, value: $('put-value').value, ...(ttl.seconds === undefined ? {} : { ttl: ttl.seconds }) },
      conditional: $('put-if-unchanged').checked,
      applied: (version, outcome) => `Applied (version ${version})${expiresNote(outcome)}.`,
    })
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
      const { response, data } = await exchange('GET', apiUrl('api', { key }))
      if (stale()) return
      // The ETag is the key's version (a deleted key's 404 carries its tombstone's): "only if unchanged" sends it back.
      const etag = response.headers.get('etag')
      if (response.status === 404 && data && data.detail === 'key not found') known.set(key, etag ? { etag } : { absent: true })
      if (!response.ok || data === undefined) throw problem(response, data, key)
      known.set(key, { etag: etag || `"${data.version}"` })
      refreshHints()
      const source = $('get-source')
      source.textContent = data.source
      source.dataset.source = data.source
      $('get-version').textContent = data.version
      $('get-value').textContent = data.data.value
      const expires = $('get-expires')
      expires.hidden = typeof data.expiresAt !== 'number'
      if (!expires.hidden) {
        const at = $('get-expires-at')
        at.dateTime = new Date(data.expiresAt * 1000).toISOString()
        at.textContent = expiryText(data.expiresAt)
      }
      getResult.hidden = false
      const size = new Blob([data.data.value]).size
      setStatus(getStatus, 'found', `Found ${quoted(key)}: ${size} byte${size === 1 ? '' : 's'}, from ${data.source}${expiresNote(data)}.`)
    } catch (error) {
      if (stale()) return
      refreshHints()
      getResult.hidden = true
      setStatus(getStatus, 'error', error.status === 404 ? `${error.message.replace(/\.$/, '')}: ${quoted(key)}.` : error.message)
    }
  })

  // Delete
  const deleteStatus = $('delete-status')
  const deleteTurn = latest()
  $('delete-form').addEventListener('submit', event => {
    event.preventDefault()
    const key = $('delete-key').value
    sendWrite({
      status: deleteStatus,
      stale: deleteTurn(),
      what: 'delete',
      key,
      method: 'DELETE',
      url: apiUrl('api', { key }),
      conditional: $('delete-if-unchanged').checked,
      applied: version => `Applied: ${quoted(key)} is deleted (version ${version}).`,
    })
  })

  // Batch: many writes pasted as lines, sent as one POST /api/batch.
  // src/shared/batch.ts MAX_BATCH_OPS: the server refuses more ops in one request.
  const MAX_BATCH_OPS = 128
  // Receipts followed at once: below the browser's six connections per host, so a Get still goes through meanwhile.
  const RECEIPTS_AT_ONCE = 4
  const batchStatus = $('batch-status')
  const batchTable = $('batch-table')
  const batchRows = $('batch-rows')
  const batchTurn = latest()
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`

  /**
   * The textarea's lines as ops, each with its line number: `key=value` puts (split at
   * the first "=", so the value may hold more), `-key` deletes the rest of the line.
   * Empty lines are skipped; nothing is trimmed (spaces are part of keys and values).
   * Returns { entries: [{ line, op }] } or { problem } naming the first bad line.
   */
  function parseBatchLines (text) {
    const entries = []
    const problems = []
    text.split('\n').forEach((raw, i) => {
      // A pasted Windows line ends in CR: it belongs to no key or value.
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
      if (line.trim() === '') return
      const n = i + 1
      if (line.startsWith('-')) {
        if (line.length === 1) problems.push(`Line ${n} is a "-" with no key: write -key to delete a key.`)
        else entries.push({ line: n, op: { op: 'delete', key: line.slice(1) } })
        return
      }
      const eq = line.indexOf('=')
      if (eq < 0) problems.push(`Line ${n} (${quoted(line)}) has no "=": write key=value to put a value, or -key to delete a key.`)
      else if (eq === 0) problems.push(`Line ${n} (${quoted(line)}) has no key before its "=": write key=value.`)
      else entries.push({ line: n, op: { op: 'put', key: line.slice(0, eq), value: line.slice(eq + 1) } })
    })
    if (problems.length > 0) {
      const more = problems.length - 1
      return { problem: problems[0] + (more > 0 ? ` ${more} more ${more === 1 ? 'line has a problem' : 'lines have problems'} too.` : '') }
    }
    if (entries.length === 0) return { problem: 'Nothing to send: write one line per write, key=value to put a value or -key to delete a key.' }
    if (entries.length > MAX_BATCH_OPS) return { problem: `The batch has ${entries.length} writes; at most ${MAX_BATCH_OPS} go in one batch. Send them in parts.` }
    return { entries }
  }

  /** The server names ops by index (`ops[3]`); the page names them by their line. */
  const inLines = (text, entries) => text.replace(/\bops\[(\d+)\]/g, (match, index) => (entries[Number(index)] ? `line ${entries[Number(index)].line}` : match))

  /** What a refused batch (nothing queued: 4xx, or an answer that is not a batch's) means, naming the line at fault. */
  function batchProblem (response, data, entries) {
    const detail = data && typeof data.detail === 'string' ? data.detail : ''
    const named = /\bops\[(\d+)\]/.exec(detail)
    const entry = named ? entries[Number(named[1])] : undefined
    const refused = refusedToken(response, data, entry && entry.op.key)
    if (refused) return entry ? `Line ${entry.line}: ${refused}` : refused
    if (detail !== '') return capitalise(inLines(detail, entries)) + '.'
    return problem(response, data).message
  }

  /** Runs `fn` over the items, at most `limit` at a time. */
  async function eachLimited (items, limit, fn) {
    let next = 0
    const worker = async () => {
      while (next < items.length) await fn(items[next++])
    }
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  }

  /** One table row per op: its line, the write, and an outcome cell the page updates. */
  function showBatchRows (entries) {
    const cells = entries.map(({ line, op }) => {
      const tr = document.createElement('tr')
      const lineCell = document.createElement('td')
      lineCell.textContent = String(line)
      const writeCell = document.createElement('td')
      writeCell.className = 'write'
      writeCell.textContent = op.op === 'put' ? `put ${quoted(op.key)} = ${JSON.stringify(short(op.value, 80))}` : `delete ${quoted(op.key)}`
      const outcomeCell = document.createElement('td')
      outcomeCell.className = 'outcome'
      tr.append(lineCell, writeCell, outcomeCell)
      batchRows.append(tr)
      return outcomeCell
    })
    batchTable.hidden = false
    return cells
  }

  function setCell (cell, state, text) {
    cell.dataset.state = state
    cell.textContent = text
  }

  /** One op's result (from the batch's answer or its receipt) in words, with the state its cell shows. */
  function opOutcome (op, result) {
    const reason = text => (text || 'no reason given').replace(/[.\s]+$/, '')
    switch (result.status) {
      case 'applied':
        return ['applied', op.op === 'delete' ? `Applied: deleted (version ${result.version}).` : `Applied (version ${result.version})${expiresNote(result)}.`]
      case 'superseded':
        return ['superseded', `Superseded: a newer write (version ${result.current}) reached the key first, so this one (version ${result.version}) was not applied.`]
      case 'rejected':
        return ['rejected', `Rejected: ${reason(result.reason)}. Get the key again to see what it holds, then retry.`]
      case 'dead-lettered':
        return ['dead-lettered', `Dead-lettered: ${reason(result.reason)}. This write (version ${result.version}) will never be applied.`]
      case 'queued':
        return ['queued', result.receipt
          ? `Queued (version ${result.version}), not applied yet: the consumers may be behind or stopped. It is safe in the queue; its outcome will be at ${result.receipt}.`
          : `Queued (version ${result.version}); waiting for its outcome…`]
      case 'not queued':
        return ['error', 'Not queued: the queue was unavailable. Send this line again.']
      case 'expired':
        return ['error', `Queued (version ${result.version}), but its outcome is no longer kept. Get the key to see what it holds.`]
      case 'unreadable':
        return ['error', `Queued (version ${result.version}), but its outcome could not be read: ${result.detail}`]
      default:
        return ['error', `The server answered an unknown outcome ${JSON.stringify(String(result.status))}.`]
    }
  }

  /** Not atomic: each op is a write of its own, with its own outcome; those still queued are followed through their receipts. */
  async function showEachOutcome (response, data, entries, stale) {
    const results = data && Array.isArray(data.results) && data.results.length === entries.length ? data.results.slice() : undefined
    // A 503's results say which ops were queued before the queue went away; any other answer without them queued nothing.
    if (!results || !(response.ok || response.status === 503)) {
      setStatus(batchStatus, 'error', batchProblem(response, data, entries))
      return
    }
    const cells = showBatchRows(entries)
    const show = i => {
      const [state, text] = opOutcome(entries[i].op, results[i])
      setCell(cells[i], state, text)
      if (results[i].status === 'applied') known.set(entries[i].op.key, { etag: `"${results[i].version}"` })
    }
    results.forEach((result, i) => show(i))
    const waiting = results.flatMap((result, i) => (result.status === 'queued' ? [i] : []))
    if (waiting.length > 0) setStatus(batchStatus, 'queued', `${plural(entries.length, 'write')}, each on its own: ${waiting.length} still queued; waiting for their outcomes…`)
    await eachLimited(waiting, RECEIPTS_AT_ONCE, async i => {
      const result = results[i]
      const key = entries[i].op.key
      const receiptUrl = result.location ? new URL(result.location, response.url) : apiUrl('api/writes', { key, version: result.version })
      try {
        const followed = await followReceipt(receiptUrl, key, stale)
        if (stale()) return
        results[i] = followed === undefined
          ? { ...result, receipt: `${receiptUrl.pathname}${receiptUrl.search}` }
          : { ...result, ...followed, version: result.version }
      } catch (error) {
        if (stale()) return
        results[i] = { ...result, status: 'unreadable', detail: error.message }
      }
      show(i)
    })
    if (stale()) return
    refreshHints()

    const count = status => results.filter(r => r.status === status).length
    const parts = [['applied', 'applied'], ['superseded', 'superseded'], ['rejected', 'rejected'], ['dead-lettered', 'dead-lettered'], ['queued', 'still queued'], ['not queued', 'not queued'], ['expired', 'outcome no longer kept'], ['unreadable', 'outcome unreadable']]
      .map(([status, words]) => [count(status), words]).filter(([n]) => n > 0).map(([n, words]) => `${n} ${words}`)
    const linesWith = statuses => entries.filter((entry, i) => statuses.includes(results[i].status)).map(entry => entry.line)
    const resend = linesWith(['not queued'])
    const text = `${plural(entries.length, 'write')}, each on its own: ${parts.join(', ')}.` +
      (resend.length ? ` ${resend.length === 1 ? 'Line' : 'Lines'} ${resend.join(', ')} ${resend.length === 1 ? 'was' : 'were'} not queued (the queue was unavailable): send ${resend.length === 1 ? 'it' : 'them'} again.` : '')
    const state = linesWith(['not queued', 'expired', 'unreadable']).length ? 'error'
      : linesWith(['rejected', 'dead-lettered']).length ? 'rejected'
        : linesWith(['queued', 'superseded']).length ? 'queued'
          : 'applied'
    setStatus(batchStatus, state, text)
  }

  /** Atomic: one version and one outcome for the whole batch; a rejection names the lines whose condition failed. */
  async function showAtomicOutcome (response, data, entries, stale) {
    let outcome
    if (response.status === 409 && data && data.status === 'rejected') outcome = data
    else if (response.status === 422 && data && data.status === 'dead-lettered') outcome = data
    else if (response.ok && data && typeof data.version === 'string' && typeof data.status === 'string') outcome = data
    else {
      setStatus(batchStatus, 'error', batchProblem(response, data, entries))
      return
    }
    const all = plural(entries.length, 'write')
    const version = outcome.version
    const cells = showBatchRows(entries)
    if (outcome.status === 'queued') {
      for (const cell of cells) setCell(cell, 'queued', `Queued with the batch (version ${version}).`)
      setStatus(batchStatus, 'queued', `Queued atomically: ${all} at version ${version}; waiting for the outcome…`)
      // The batch's receipt is its first key's (every key of it records the same outcome).
      const first = entries[0].op.key
      const location = response.headers.get('location')
      const receiptUrl = location ? new URL(location, response.url) : apiUrl('api/writes', { key: first, version })
      let followed
      try {
        followed = await followReceipt(receiptUrl, first, stale)
      } catch (error) {
        if (!stale()) setStatus(batchStatus, 'error', `Queued atomically (version ${version}), but its outcome could not be read: ${error.message}`)
        return
      }
      if (stale()) return
      if (followed === undefined) {
        setStatus(batchStatus, 'queued', `Queued atomically (version ${version}), not applied yet: the consumers may be behind or stopped. It is safe in the queue; its outcome will be at ${receiptUrl.pathname}${receiptUrl.search}.`)
        return
      }
      if (followed.status === 'expired') {
        setStatus(batchStatus, 'error', `Queued atomically (version ${version}), but its outcome is no longer kept. Get its keys to see what they hold.`)
        return
      }
      // "superseded": the first key holds a newer write, over the batch's, which was applied.
      outcome = { ...followed, version, status: followed.status === 'superseded' ? 'applied' : followed.status, detail: followed.reason }
    }

    switch (outcome.status) {
      case 'applied':
        entries.forEach((entry, i) => {
          setCell(cells[i], 'applied', entry.op.op === 'delete' ? `Applied: deleted (version ${version}).` : `Applied (version ${version}).`)
          known.set(entry.op.key, { etag: `"${version}"` })
        })
        refreshHints()
        setStatus(batchStatus, 'applied', `Applied atomically: ${entries.length === 1 ? 'the write' : `all ${all}`}, at version ${version}.`)
        break
      case 'rejected': {
        const failed = (Array.isArray(outcome.failed) ? outcome.failed : []).filter(f => entries[f.index])
        const now = f => (f.current ? `now at version ${f.current}` : 'now absent')
        entries.forEach((entry, i) => {
          const f = failed.find(x => x.index === i)
          setCell(cells[i], 'rejected', f ? `Condition failed: the key is ${now(f)}. Not applied.` : 'Not applied: the batch was rejected.')
        })
        const named = failed.map(f => `line ${entries[f.index].line} (${quoted(f.key)}, ${now(f)})`)
        const one = named.length === 1
        const why = named.length
          ? `the condition of ${named.join(', ')} failed: ${one ? 'that key' : 'those keys'} changed since you read ${one ? 'it' : 'them'}. Get ${one ? 'it' : 'them'} again to see what ${one ? 'it holds' : 'they hold'}, then retry`
          : `${inLines(String(outcome.detail || 'a condition failed'), entries).replace(/[.\s]+$/, '')}. Get the keys again to see what they hold, then retry`
        setStatus(batchStatus, 'rejected', `Rejected: none of the ${all} was applied, because ${why}.`)
        break
      }
      case 'dead-lettered':
        for (const cell of cells) setCell(cell, 'dead-lettered', 'Dead-lettered with the batch: never applied.')
        setStatus(batchStatus, 'dead-lettered', `Dead-lettered: ${String(outcome.detail || 'the record refused this batch').replace(/[.\s]+$/, '')}. None of the ${all} will be applied (version ${version}).`)
        break
      default:
        setStatus(batchStatus, 'error', `The server answered an unknown outcome ${JSON.stringify(String(outcome.status))} for version ${version}.`)
    }
  }

  const batchForm = $('batch-form')
  batchForm.addEventListener('submit', async event => {
    event.preventDefault()
    const stale = batchTurn()
    batchTable.hidden = true
    batchRows.replaceChildren()
    const parsed = parseBatchLines($('batch-lines').value)
    if (parsed.problem) {
      setStatus(batchStatus, 'error', parsed.problem)
      return
    }
    const { entries } = parsed
    if ($('batch-if-unchanged').checked) {
      const unread = entries.find(entry => !known.has(entry.op.key))
      if (unread) {
        setStatus(batchStatus, 'error', `Line ${unread.line}: no ETag for ${quoted(unread.op.key)} yet: Get it first. "Only if unchanged" sends the version your last Get of each key showed.`)
        return
      }
      for (const { op } of entries) {
        const seen = known.get(op.key)
        if (seen.etag) op.ifMatch = seen.etag
        else op.ifNoneMatch = '*'
      }
    }
    const atomic = $('batch-atomic').checked
    setStatus(batchStatus, 'busy', `Sending ${plural(entries.length, 'write')}${atomic ? ' atomically' : ''}; waiting up to ${WRITE_WAIT_S} s for ${atomic ? 'the outcome' : 'their outcomes'}…`)
    let answer
    try {
      answer = await exchange('POST', apiUrl('api/batch'), { body: { ops: entries.map(entry => entry.op), atomic }, headers: { prefer: `wait=${WRITE_WAIT_S}` } })
    } catch (error) {
      if (!stale()) setStatus(batchStatus, 'error', error.message)
      return
    }
    if (stale()) return
    const { response, data } = answer
    if (atomic) await showAtomicOutcome(response, data, entries, stale)
    else await showEachOutcome(response, data, entries, stale)
  })

  $('batch-lines').addEventListener('keydown', event => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault()
      batchForm.requestSubmit()
    }
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
      const scope = listing.prefix === '' ? '' : ` starting with ${quoted(listing.prefix)}`
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
