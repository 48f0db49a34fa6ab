// Small helpers shared by the pages: JSON calls with the CSRF token, page config.
export function pageConfig() {
  return JSON.parse(document.getElementById("page-config").textContent);
}

export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

// POST `body` as JSON (the pages' usual call).
export async function api(path, body) {
  return request("POST", path, body ?? {});
}

// Any method; `body` undefined sends none. Errors carry the server's `code`, the HTTP status and
// Retry-After (seconds) when there is one.
export async function request(method, path, body) {
  const headers = { "x-csrf-token": csrfToken() };
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.detail || `Request failed (${response.status})`);
    error.status = response.status;
    error.code = data.code;
    const retry = Number(response.headers.get("retry-after"));
    if (retry > 0) error.retryAfter = retry;
    throw error;
  }
  return data;
}

export function show(element, visible) {
  element.classList.toggle("hidden", !visible);
}

export function formatElapsed(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(Math.floor(seconds % 60)).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
