// The admin page: store counts, events by type, model versions with their metrics, tuning
// history charts and per-route traffic from /metrics. It needs an admin key when the API
// requires keys; the key typed here stays in this tab's sessionStorage.

import { ApiError, apiKey, get, getText, post, setApiKey } from "/static/api.js";
import { trialChart } from "/static/chart.js";

const $ = (id) => document.getElementById(id);

export function h(tag, attrs = {}, ...children) {
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

export function fmtMetric(v) {
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

export function showError(target, err) {
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
    if ("jobs" in body) $("jobs").replaceChildren(renderJobs(body.jobs));
    const types = body.event_types || body.events_by_type || counts.event_types || {};
    const entries = Object.entries(types).sort((a, b) => b[1] - a[1]);
    $("event-types").replaceChildren(
      ...(entries.length ? entries.map(([t, n]) => stat(t, n, `type-${t}`)) : [h("p", { class: "muted" }, "No breakdown available.")]),
    );
  } catch (err) {
    showError($("counts"), err);
    showError($("jobs"), err);
  }
}

// ---- models ----------------------------------------------------------------------------

function versionsOf(body) {
  if (Array.isArray(body)) return body;
  return (body && (body.versions || body.models || body.items)) || [];
}

/** Metrics as flat `{"test.ndcg@10": 0.31, ...}` (one level of nesting joined by dots). */
function flatMetrics(metrics) {
  const out = {};
  for (const [k, x] of Object.entries(metrics || {})) {
    if (typeof x === "number") out[k] = x;
    else if (x && typeof x === "object") for (const [k2, y] of Object.entries(x)) if (typeof y === "number") out[`${k}.${k2}`] = y;
  }
  return out;
}

/** Columns always shown when some version records them: a bundle's held-out metric (what
 * the gate compares) and its build-time tuning (validation metric, the defaults', trials,
 * seconds), side by side with a tuned model's test and validation metrics. */
const PINNED_COLUMNS = ["holdout.ndcg@10", "tuning.ndcg@10", "tuning.default_ndcg@10", "tuning.trials", "tuning.seconds"];

function metricColumns(versions) {
  const cols = new Set();
  // quality metrics, and a bundle's total build time; not every per-model timing
  const keep = (k) => !k.startsWith("seconds.") || k === "seconds.total";
  for (const v of versions) for (const k of Object.keys(flatMetrics(v.metrics))) if (keep(k)) cols.add(k);
  const pinned = PINNED_COLUMNS.filter((k) => cols.has(k));
  const rank = (k) => {
    const order = ["ndcg", "recall", "hit", "mrr", "map", "precision", "coverage", "total"];
    const i = order.findIndex((m) => k.includes(m));
    return (i < 0 ? 50 : i) + (k.startsWith("test") ? 0 : k.startsWith("validation") ? 0.3 : 0.6);
  };
  const rest = [...cols].filter((k) => !pinned.includes(k) && !k.startsWith("tuning."));
  rest.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  return [...pinned, ...rest].slice(0, Math.max(5, pinned.length + 3));
}

const COLUMN_LABELS = {
  "seconds.total": "build s",
  "holdout.ndcg@10": "held-out ndcg@10",
  "tuning.ndcg@10": "tuned ndcg@10 (val)",
  "tuning.default_ndcg@10": "default ndcg@10 (val)",
  "tuning.trials": "tuning trials",
  "tuning.seconds": "tuning s",
};

const columnLabel = (c) => COLUMN_LABELS[c] ?? c;

function renderModelTable(versions) {
  if (!versions.length) return h("p", { class: "muted" }, "No model versions yet.");
  const cols = metricColumns(versions);
  return h(
    "table",
    { class: "data", id: "models-table" },
    h("thead", {}, h("tr", {}, h("th", {}, "version"), h("th", {}, "model"), h("th", {}, "created"),
      h("th", { class: "num" }, "interactions"),
      cols.map((c) => h("th", { class: "num", dataset: { metric: c } }, columnLabel(c))), h("th", {}, ""))),
    h("tbody", {}, versions.map((v) =>
      h("tr", { class: v.active ? "active" : "", dataset: { version: v.version ?? v.id ?? v.name } },
        h("td", {}, String(v.version ?? v.id ?? v.name ?? "")),
        h("td", {}, String(v.model ?? (v.models && typeof v.models === "object" ? Object.keys(v.models).join(", ") : v.name) ?? "")),
        h("td", {}, String(v.created ?? v.created_at ?? "").replace("T", " ").slice(0, 16)),
        h("td", { class: "num" }, fmtMetric((v.counts || {}).interactions)),
        cols.map((c) => h("td", { class: "num" }, fmtMetric(flatMetrics(v.metrics)[c]))),
        h("td", {}, v.active
          ? "active"
          : h("button", { class: "btn small", dataset: { activate: v.version } }, "activate"))))),
  );
}

/** Serve another version (POST /v1/models/{version}/activate), then redraw. */
async function activate(version, button) {
  button.disabled = true;
  button.textContent = "activating…";
  try {
    await post(`/v1/models/${encodeURIComponent(version)}/activate`, {});
  } catch (err) {
    showError($("admin-error"), err);
  }
  await renderAll();
}

/** What a job came to: its error, a train job's gate decision, or its result. */
function jobOutcome(j) {
  if (j.error) return j.error.slice(0, 120);
  const r = j.result;
  if (!r) return j.progress && j.progress.phase ? `${j.progress.phase}…` : "";
  if (r.gate) return `${r.version}: ${r.activated ? "served" : "kept"} (${r.gate.reason})`;
  return JSON.stringify(r).slice(0, 120);
}

function renderJobs(jobs) {
  const actions = h("p", {},
    h("button", { class: "btn small", dataset: { job: "retrain" } }, "retrain (served if it passes the gate)"), " ",
    h("button", { class: "btn small", dataset: { job: "rollback" } }, "roll back"));
  if (!jobs || !jobs.length) return h("div", {}, actions, h("p", { class: "muted" }, "No training or tuning jobs since the server started."));
  const live = (j) => j.status === "queued" || j.status === "running";
  return h("div", {}, actions, h(
    "table",
    { class: "data", id: "jobs-table" },
    h("thead", {}, h("tr", {}, ["job", "kind", "trigger", "status", "created", "finished", "result", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, jobs.map((j) =>
      h("tr", { dataset: { status: j.status } },
        h("td", {}, j.job_id), h("td", {}, j.kind), h("td", {}, String(j.trigger || "api").split(":")[0]), h("td", {}, j.status),
        h("td", {}, String(j.created_at || "").replace("T", " ").slice(0, 19)),
        h("td", {}, String(j.finished_at || "").replace("T", " ").slice(0, 19)),
        h("td", {}, jobOutcome(j)),
        h("td", {}, live(j) ? h("button", { class: "btn small", dataset: { cancel: j.job_id } }, "cancel") : "")))),
  ));
}

/** Start a gated retrain, roll back, or cancel a job; then redraw. */
async function jobAction(button) {
  button.disabled = true;
  let failed = null;
  try {
    if (button.dataset.cancel) await post(`/v1/jobs/${encodeURIComponent(button.dataset.cancel)}/cancel`, {});
    else if (button.dataset.job === "retrain") await post("/v1/jobs", { kind: "train", activate: true });
    else if (button.dataset.job === "rollback") await post("/v1/models/rollback", {});
  } catch (err) {
    failed = err;
  }
  await renderAll();
  if (failed) showError($("admin-error"), failed); // after the redraw, which clears it
}

/** A tuning run as a chart series: trials with a value (pruned ones hollow). */
function runSeries(run) {
  const points = (run.trials || [])
    .filter((t) => typeof t.value === "number")
    .map((t) => ({ x: t.number, y: t.value, pruned: String(t.state).toUpperCase() === "PRUNED" }));
  const where = run.version ? ` → ${run.version}${run.promoted ? " (promoted)" : ""}` : "";
  return {
    title: `${run.model || "model"} · ${run.study}${where}`,
    metric: run.metric || "objective",
    maximize: !String(run.direction || "maximize").toLowerCase().startsWith("min"),
    points,
  };
}

async function renderModels() {
  try {
    $("models").replaceChildren(renderModelTable(versionsOf(await get("/v1/models"))));
  } catch (err) {
    showError($("models"), err);
  }
  try {
    const runs = await get("/v1/admin/tuning");
    const series = (Array.isArray(runs) ? runs : []).map(runSeries).filter((s) => s.points.length);
    $("tuning").replaceChildren(
      ...(series.length
        ? series.map((s) =>
            h("figure", { class: "chart", dataset: { trials: s.points.length } },
              h("figcaption", {}, s.title,
                h("div", { class: "muted" }, `${s.metric} per trial · line: best so far · hollow: pruned`)),
              trialChart(s.points, { xLabel: "trial", yLabel: s.metric, maximize: s.maximize })))
        : [h("p", { class: "muted" }, "No tuning runs yet: `shelfwise tune --promote` and the tune job record them.")]),
    );
  } catch (err) {
    showError($("tuning"), err);
  }
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

document.addEventListener("click", (e) => {
  const button = e.target.closest("button[data-activate]");
  if (button) activate(button.dataset.activate, button);
  const job = e.target.closest("button[data-job], button[data-cancel]");
  if (job) jobAction(job);
});

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  setApiKey($("api-key").value.trim());
  $("key-form").classList.add("hidden");
  renderAll();
});
if (apiKey()) $("api-key").value = apiKey();
renderAll();
