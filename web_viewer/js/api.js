// HTTP access to the platform API (same origin by default; `api` in /viewer/config.json may set a prefix).

let base = "";

/** Set the API prefix ("" = the origin that served the viewer). */
export function setApiBase(prefix) {
  base = (prefix || "").replace(/\/$/, "");
}

/** Absolute URL of an API path such as "/tilesets". */
export function apiUrl(path) {
  return new URL(base + path, window.location.origin).href;
}

/**
 * GET a JSON document. Resolves to {ok, status, data}; never rejects on HTTP errors so that callers can
 * show "no data" instead of failing (the analysis endpoints answer 404 before their first run).
 */
export async function getJson(path) {
  try {
    const response = await fetch(apiUrl(path), { headers: { Accept: "application/json" } });
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    return { ok: response.ok, status: response.status, data };
  } catch (error) {
    return { ok: false, status: 0, data: null, error: String(error) };
  }
}
