// Returns the event it was given, so tests can see exactly what the host built.
export async function handler(event) {
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) }
}
