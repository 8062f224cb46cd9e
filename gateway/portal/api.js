// JSON calls to Envoy with the session cookie. Unsafe methods carry the
// session's CSRF token; the browser never holds an API key.
let csrfToken = null;

export function setCsrf(token) {
  csrfToken = token;
}

export function csrfHeader() {
  return csrfToken ? { "X-CSRF-Token": csrfToken } : {};
}

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.retryAfter = retryAfter;
    const info = (body.details || []).find((d) => d.reason);
    this.reason = info ? info.reason : "";
  }
}

export function parseBody(text) {
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") Object.assign(headers, csrfHeader());
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = parseBody(await response.text());
  if (!response.ok) throw new ApiError(response.status, data, response.headers.get("retry-after"));
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);
export const put = (path, body) => call("PUT", path, body);
export const del = (path) => call("DELETE", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
