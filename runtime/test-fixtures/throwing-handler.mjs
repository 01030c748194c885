// A function that fails: the host must answer 500 JSON and keep serving.
export async function handler(event) {
  if (event.rawQueryString === 'sync') throw new Error('boom (sync path)')
  await Promise.resolve()
  throw new Error('boom')
}
