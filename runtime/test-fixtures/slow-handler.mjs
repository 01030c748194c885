// A function that takes `?ms=N` milliseconds (default 300) to answer: for timeouts and draining.
export async function handler(event) {
  const ms = Number(new URLSearchParams(event.rawQueryString).get('ms') ?? 300)
  await new Promise(resolve => setTimeout(resolve, ms))
  return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ slept: ms }) }
}
