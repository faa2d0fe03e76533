// The admin page: store counts, events by type, model versions with their metrics, tuning
// history charts and per-route traffic from /metrics. It needs an admin key when the API
// requires keys; the key typed here stays in this tab's sessionStorage.

import { ApiError, apiKey, get, getText, setApiKey } from "/static/api.js";
import { trialChart } from "/static/chart.js";

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const num = (v) => (typeof v === "number" ? v.toLocaleString("en-US") : String(v ?? "—"));

function fmtMetric(v) {
  if (typeof v !== "number") return v === null || v === undefined ? "—" : String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

function stat(label, value, key) {
  return h("div", { class: "stat", dataset: { key } }, h("div", { class: "n" }, num(value)), h("div", { class: "label" }, label));
}

function needKey(err) {
  if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 403)) return false;
  $("key-form").classList.remove("hidden");
  $("key-note").textContent = err.status === 401 ? "this API requires a key" : "this key lacks the admin scope";
  return true;
}

function showError(target, err) {
  if (needKey(err)) {
    target.replaceChildren(h("p", { class: "muted" }, "Needs an admin key."));
    return;
  }
  target.replaceChildren(h("div", { class: "error" }, String(err.message || err)));
}

// ---- counts ----------------------------------------------------------------------------

/** Store counts: the admin stats endpoint when there is one, else /readyz. */
async function fetchStats() {
  for (const path of ["/v1/admin/summary", "/v1/admin/stats", "/v1/stats"]) {
    try {
      return await get(path);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
    }
  }
  return get("/readyz");
}

async function renderCounts() {
  try {
    const body = await fetchStats();
    const counts = body.counts || body.store || body;
    $("counts").replaceChildren(
      ...["items", "users", "events"].filter((k) => k in counts).map((k) => stat(k, counts[k], k)),
    );
    const bundle = body.bundle || body.model_version;
    $("bundle").textContent = bundle ? `serving model bundle ${bundle}` : "";
    const types = body.event_types || body.events_by_type || counts.event_types || {};
    const entries = Object.entries(types).sort((a, b) => b[1] - a[1]);
    $("event-types").replaceChildren(
      ...(entries.length ? entries.map(([t, n]) => stat(t, n, `type-${t}`)) : [h("p", { class: "muted" }, "No breakdown available.")]),
    );
  } catch (err) {
    showError($("counts"), err);
  }
}

// ---- models ----------------------------------------------------------------------------

function versionsOf(body) {
  if (Array.isArray(body)) return body;
  return (body && (body.versions || body.models || body.items)) || [];
}

function metricColumns(versions) {
  const cols = new Set();
  for (const v of versions) for (const [k, x] of Object.entries(v.metrics || {})) if (typeof x === "number") cols.add(k);
  const preferred = ["ndcg@10", "recall@10", "precision@10", "map@10", "mrr@10", "hit@10", "coverage"];
  return [...cols].sort((a, b) => {
    const ia = preferred.indexOf(a);
    const ib = preferred.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  }).slice(0, 8);
}

function renderModelTable(versions) {
  if (!versions.length) return h("p", { class: "muted" }, "No model versions yet.");
  const cols = metricColumns(versions);
  return h(
    "table",
    { class: "data", id: "models-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "version"), h("th", {}, "model"), h("th", {}, "created"),
      cols.map((c) => h("th", { class: "num" }, c)), h("th", {}, ""))),
    h("tbody", {}, versions.map((v) =>
      h("tr", { class: v.active ? "active" : "", dataset: { version: v.version ?? v.id ?? v.name } },
        h("td", {}, String(v.version ?? v.id ?? v.name ?? "")),
        h("td", {}, String(v.model ?? (v.models && typeof v.models === "object" ? Object.keys(v.models).join(", ") : v.name) ?? "")),
        h("td", {}, String(v.created ?? v.created_at ?? "").replace("T", " ").slice(0, 19)),
        cols.map((c) => h("td", { class: "num" }, fmtMetric((v.metrics || {})[c]))),
        h("td", {}, v.active ? "active" : "")))),
  );
}

/** Trial series found in a version's tuning report: [{title, points, maximize, metric}]. */
function tuningSeries(v) {
  const found = [];
  const sources = [v.tuning, v.extra && v.extra.tuning, v.extra, v.report].filter(Boolean);
  for (const src of sources) {
    const trials = Array.isArray(src) ? src : src.trials || src.history;
    if (!Array.isArray(trials) || !trials.length) continue;
    const points = trials
      .map((t, i) => ({
        x: Number(t.number ?? t.trial ?? i),
        y: Number(t.value ?? (Array.isArray(t.values) ? t.values[0] : undefined) ?? t.score),
        pruned: String(t.state || "").toLowerCase().includes("prune"),
      }))
      .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (!points.length) continue;
    const direction = String(src.direction || "maximize").toLowerCase();
    found.push({
      title: `${v.model ?? ""} ${v.version ?? ""}`.trim(),
      metric: src.metric || src.objective || "objective",
      maximize: !direction.startsWith("min"),
      points,
    });
    break;
  }
  return found;
}

async function renderModels() {
  let versions = [];
  try {
    versions = versionsOf(await get("/v1/models"));
    $("models").replaceChildren(renderModelTable(versions));
  } catch (err) {
    showError($("models"), err);
    showError($("tuning"), err);
    return;
  }
  let series = versions.flatMap(tuningSeries);
  // a separate tuning history endpoint, when the API has one
  if (!series.length) {
    try {
      const body = await get("/v1/models/tuning");
      const runs = Array.isArray(body) ? body : body.runs || body.studies || [];
      series = runs.flatMap((r) => tuningSeries({ ...r, tuning: r }));
    } catch {
      /* none */
    }
  }
  $("tuning").replaceChildren(
    ...(series.length
      ? series.map((s) =>
          h("figure", { class: "chart", dataset: { trials: s.points.length } },
            h("figcaption", {}, `${s.title}: ${s.metric} by trial (line: best so far)`),
            trialChart(s.points, { xLabel: "trial", yLabel: s.metric, maximize: s.maximize })))
      : [h("p", { class: "muted" }, "No tuning runs yet: `shelfwise tune` records them with each model version.")]),
  );
}

// ---- traffic from /metrics -------------------------------------------------------------

function parseProm(text) {
  const rows = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+([-+eE\d.]+|NaN|\+Inf)/);
    if (!m) continue;
    const labels = {};
    for (const part of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[part[1]] = part[2];
    rows.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return rows;
}

async function renderTraffic() {
  try {
    const rows = parseProm(await getText("/metrics"));
    const counts = new Map();
    for (const r of rows) {
      if (!/requests_total$/.test(r.name)) continue;
      const route = r.labels.route || r.labels.path || r.labels.handler || "?";
      const key = `${r.labels.method || "GET"} ${route}`;
      const c = counts.get(key) || { total: 0, errors: 0 };
      c.total += r.value;
      if (/^5/.test(r.labels.status || r.labels.code || "")) c.errors += r.value;
      counts.set(key, c);
    }
    const sorted = [...counts.entries()].sort((a, b) => b[1].total - a[1].total).slice(0, 20);
    $("traffic").replaceChildren(
      sorted.length
        ? h("table", { class: "data" },
            h("thead", {}, h("tr", {}, h("th", {}, "route"), h("th", { class: "num" }, "requests"), h("th", { class: "num" }, "5xx"))),
            h("tbody", {}, sorted.map(([k, c]) => h("tr", {}, h("td", {}, k), h("td", { class: "num" }, num(c.total)), h("td", { class: "num" }, num(c.errors))))))
        : h("p", { class: "muted" }, "No request counters yet."),
    );
  } catch (err) {
    showError($("traffic"), err);
  }
}

async function renderAll() {
  $("admin-error").replaceChildren();
  await Promise.all([renderCounts(), renderModels(), renderTraffic()]);
  document.body.dataset.ready = String(Number(document.body.dataset.ready || 0) + 1);
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  setApiKey($("api-key").value.trim());
  $("key-form").classList.add("hidden");
  renderAll();
});
if (apiKey()) $("api-key").value = apiKey();
renderAll();
