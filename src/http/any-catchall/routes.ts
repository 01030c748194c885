/**
 * The API's paths and the methods app.arc declares on each: what the catch-all
 * needs to tell "wrong method on a real path" (405 with `Allow`) from "no such
 * path" (404). A bundle cannot read app.arc on Lambda, so the table lives here;
 * index.test.ts fails when it and app.arc disagree.
 */
export const API_ROUTES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  '/api': Object.freeze(['GET', 'PUT', 'DELETE']),
  '/api/all': Object.freeze(['GET']),
  '/api/writes': Object.freeze(['GET']),
  '/api/batch': Object.freeze(['POST']),
})

/** The methods declared on `path`, or undefined when no function serves it. */
export function methodsOn(path: string): readonly string[] | undefined {
  return Object.hasOwn(API_ROUTES, path) ? API_ROUTES[path] : undefined
}
