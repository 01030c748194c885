/**
 * The headers every answer carrying the form (public/) gets, from nginx, the
 * warm hosts and the catch-all function alike: a Content-Security-Policy that
 * allows only the page's own files (no inline script or style, no other
 * origin, no framing), no MIME sniffing, and no Referer leaving the page.
 */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
})
