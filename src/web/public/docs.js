// Swagger UI over this server's own OpenAPI document. validatorUrl: null keeps it from calling the
// public validator: the docs page must work with no internet.
window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: 'BaseLayout',
});
