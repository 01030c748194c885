/**
 * PUT /api {"key","value","ttl"?|"expiresAt"?} — validate, stamp a version, queue durably; 200 only
 * after the broker confirmed. If-Match / If-None-Match make it conditional;
 * Prefer: wait=S waits for its outcome (write-outcomes.ts). Needs write access
 * to the key (auth.ts).
 */
import { authenticate, requireAccess } from '../../shared/auth.js'
import { getConfig } from '../../shared/config.js'
import { PayloadTooLargeError, ValidationError } from '../../shared/errors.js'
import { readJsonObject, withHttpErrors, type HttpEvent } from '../../shared/http.js'
import { warm } from '../../shared/lazy.js'
import { openWriter } from '../../shared/open-writer.js'
import { keyProblem, lifeProblem, valueProblem } from '../../shared/validate.js'
import { writeWithOutcome } from '../../shared/write-outcomes.js'

const clients = warm(() => openWriter(getConfig()))

export const handler = withHttpErrors(async (event: HttpEvent) => {
  const principal = await authenticate(clients().auth, event)
  const body = readJsonObject(event)
  if (!('key' in body)) throw new ValidationError('field "key" is required')
  if (!('value' in body)) throw new ValidationError('field "value" is required')
  const badKey = keyProblem(body.key)
  if (badKey) throw new ValidationError(badKey.message)
  const badValue = valueProblem(body.value)
  if (badValue) throw badValue.tooLarge ? new PayloadTooLargeError(badValue.message) : new ValidationError(badValue.message)

  const life = lifeProblem(body)
  if ('message' in life) throw new ValidationError(life.message)
  requireAccess(principal, body.key as string, 'write')

  return writeWithOutcome(clients(), event, getConfig().addQueue, body.key as string, body.value as string, life.life)
})
