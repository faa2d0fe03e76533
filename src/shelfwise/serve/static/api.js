// The pages' one door to the JSON API: requests, the visitor and session ids, events,
// and the adapters that turn API answers into the shapes the pages draw.

const CONFIG = (() => {
  const node = document.getElementById("shelfwise-config");
  try {
    return node ? JSON.parse(node.textContent) : {};
  } catch {
    return {};
  }
})();

export const config = CONFIG;

const KEY_STORAGE = "shelfwise.apiKey";

/** The API key this tab sends: one typed into the admin page, else the page's own. */
export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || CONFIG.apiKey || null;
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(`${path}: ${status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.detail = detail;
  }
}

function randomId(prefix) {
  const raw = globalThis.crypto && crypto.randomUUID
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 12)}`;
  return `${prefix}-${raw.replaceAll("-", "").slice(0, 16)}`;
}

/** This browser's shopper id: made once, kept in localStorage, sent as user_id. */
export function visitorId() {
  let id = localStorage.getItem("shelfwise.visitor");
  if (!id) {
    id = randomId("visitor");
    localStorage.setItem("shelfwise.visitor", id);
  }
  return id;
}

/** One session per tab (sessionStorage survives reloads, not new tabs). */
export function sessionId() {
  let id = sessionStorage.getItem("shelfwise.session");
  if (!id) {
    id = randomId("s");
    sessionStorage.setItem("shelfwise.session", id);
  }
  return id;
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const key = apiKey();
  if (key) h["X-API-Key"] = key;
  return h;
}

function url(path, params) {
  const u = new URL((CONFIG.apiBase || "") + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
    else u.searchParams.set(k, v);
  }
  return u;
}

async function parse(res, path) {
  const text = await res.text();
  let body = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* plain text (e.g. /metrics) */
  }
  if (!res.ok) throw new ApiError(res.status, body && body.detail ? body.detail : body, path);
  return body;
}

export async function get(path, params) {
  const res = await fetch(url(path, params), { headers: headers() });
  const body = await parse(res, path);
  // a served list's request_id goes with each of its items, so the events they lead to
  // can name it (attribution: docs/guides/experiments.md)
  if (body && typeof body.request_id === "string" && Array.isArray(body.items)) {
    for (const it of body.items) if (it && typeof it === "object" && !it.request_id) it.request_id = body.request_id;
  }
  return body;
}

/** The request id of the list a product was last opened from, in this tab. */
export function listOf(itemId) {
  try {
    return sessionStorage.getItem(`shelfwise-list:${itemId}`) || undefined;
  } catch {
    return undefined;
  }
}

/** Remember the list (request id) a product is being opened from. */
export function openedFrom(itemId, requestId) {
  if (!requestId) return;
  try {
    sessionStorage.setItem(`shelfwise-list:${itemId}`, requestId);
  } catch {
    // storage full or disabled: the events go without it
  }
}

export async function getText(path) {
  const res = await fetch(url(path), { headers: headers({ Accept: "text/plain" }) });
  if (!res.ok) throw new ApiError(res.status, await res.text(), path);
  return res.text();
}

export async function post(path, body, { keepalive = false } = {}) {
  const res = await fetch(url(path), {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
    keepalive,
  });
  return parse(res, path);
}

// ---- events --------------------------------------------------------------------------

const pending = new Set();

/**
 * Post one event for this visitor. `keepalive` lets a click's event outlive the page it
 * was clicked on. Resolves to true when the API acknowledged it (it is then stored).
 */
export function track(type, fields = {}) {
  // the server stamps the time (browser clocks drift); the event_id makes a retried
  // post a duplicate instead of a second event
  const event = { event_id: randomId("e"), user_id: visitorId(), session_id: sessionId(), type, ...fields };
  for (const k of Object.keys(event)) if (event[k] === undefined || event[k] === null) delete event[k];
  const p = post("/v1/events", event, { keepalive: true })
    .then(() => true)
    .catch((err) => {
      console.warn("event not recorded", err);
      return false;
    })
    .finally(() => {
      pending.delete(p);
      document.body.dataset.pendingEvents = String(pending.size);
    });
  pending.add(p);
  document.body.dataset.pendingEvents = String(pending.size);
  return p;
}

/** Resolves when every event posted so far has been answered. */
export function flushed() {
  return Promise.all([...pending]);
}

// ---- recently viewed (this browser) ---------------------------------------------------

export function recentlyViewed() {
  try {
    return JSON.parse(localStorage.getItem("shelfwise.recent") || "[]");
  } catch {
    return [];
  }
}

export function remember(item) {
  const list = recentlyViewed().filter((x) => x.item_id !== item.item_id);
  list.unshift({ item_id: item.item_id, title: item.title, category: item.category });
  localStorage.setItem("shelfwise.recent", JSON.stringify(list.slice(0, 20)));
}

// ---- adapters: API answers -> page shapes ----------------------------------------------

/** Items of any list-shaped answer ({results}, {items}, {hits} or a bare list). */
export function itemsOf(body) {
  if (!body) return [];
  if (Array.isArray(body)) return body;
  return body.results || body.items || body.hits || body.recommendations || [];
}

/** Facets as [{name, values: [{value, count}]}], whatever the API's layout. */
export function facetsOf(body) {
  const raw = body && body.facets;
  if (!raw) return [];
  const entries = Array.isArray(raw)
    ? raw.map((f) => [f.name || f.field, f.values || f.buckets || f.counts || []])
    : Object.entries(raw);
  return entries.map(([name, values]) => ({
    name,
    values: (Array.isArray(values)
      ? values.map((v) =>
          typeof v === "object"
            ? { value: v.value ?? v.key ?? v.label, label: v.label, count: v.count ?? v.n ?? 0, min: v.min, max: v.max }
            : { value: v, count: 0 })
      : Object.entries(values).map(([value, count]) => ({ value, count }))
    ).filter((v) => v.value !== undefined && v.value !== null && v.value !== ""),
  }));
}

/** Autocomplete suggestions as [{text, kind, item_id}]. */
export function suggestionsOf(body) {
  const raw = Array.isArray(body) ? body : (body && (body.suggestions || body.completions || body.results)) || [];
  return raw
    .map((s) =>
      typeof s === "string"
        ? { text: s, kind: "" }
        : {
            text: s.text ?? s.suggestion ?? s.value ?? s.query ?? s.title ?? "",
            kind: s.kind ?? s.type ?? s.source ?? "",
            item_id: s.item_id,
          })
    .filter((s) => s.text);
}

/** Total hits of a search answer, when the API says. */
export function totalOf(body, fallback) {
  if (!body) return fallback;
  return body.total ?? body.total_hits ?? body.n_hits ?? body.count ?? fallback;
}
