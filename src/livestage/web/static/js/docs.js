// Starts Swagger UI on /docs (web/docs.py), the settings FastAPI's own docs page uses, from a
// file rather than an inline script so the Content-Security-Policy lets it run. No validator
// badge: it would call a third-party host.
const root = document.getElementById("swagger-ui");
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

// "Try it out" on a state-changing operation sends the CSRF token the API asks for. It is
// fetched each time: signing in or out through the page itself changes it.
async function withCsrfToken(request) {
  if (!UNSAFE.has(String(request.method || "GET").toUpperCase())) return request;
  const answer = await fetch(root.dataset.csrfUrl, { credentials: "same-origin" });
  if (answer.ok) request.headers["X-CSRF-Token"] = (await answer.json()).csrf_token;
  return request;
}

window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  requestInterceptor: withCsrfToken,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
