// Starts Swagger UI on /docs (web/docs.py), the settings FastAPI's own docs page uses, from a
// file rather than an inline script so the Content-Security-Policy lets it run. No validator
// badge: it would call a third-party host.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
