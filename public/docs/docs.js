// Renders /openapi.json with Swagger UI (public/docs/swagger-ui/, copied from
// swagger-ui-dist by scripts/build-docs.mjs). A file, not an inline script: the
// page runs under the form's Content-Security-Policy (script-src 'self').
window.ui = window.SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  // The online validator badge would load an image from another origin.
  validatorUrl: null,
  // Requests made with "Try it out" go to this server, with the token given under "Authorize".
  withCredentials: false,
})
