// Answers in the shape `?shape=` asks for: the API Gateway v2 result forms a function may return.
export async function handler(event) {
  switch (event.rawQueryString.replace('shape=', '')) {
    case 'object': return { hello: 'world' }
    case 'string': return 'plain text'
    case 'undefined': return undefined
    case 'binary': return { statusCode: 201, headers: { 'Content-Type': 'application/octet-stream', 'X-Custom': 'yes' }, body: Buffer.from([0, 1, 2, 255]).toString('base64'), isBase64Encoded: true }
    case 'cookies': return { statusCode: 200, cookies: ['a=1; Secure', 'b=2'], body: 'with cookies' }
    case 'invalid': return { statusCode: 200, body: { not: 'a string' } }
    case 'callback': return undefined
    default: return { statusCode: 204 }
  }
}
