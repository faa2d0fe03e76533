// The admin page's Experiments and Search analytics tabs: the experiments with their
// per-variant metrics, comparisons (lift, 95% interval, p-value, always-valid p-value),
// sample-ratio check and the results over time as charts; and search analytics (top and
// zero-result queries, click-through by position and per day). Data: /v1/experiments,
// /v1/experiments/{id}/results and /v1/analytics/search (admin scope).

import { get, post } from "/static/api.js";
import { fmtMetric, h, showError } from "/static/admin.js";
import { lineChart } from "/static/chart.js";

const $ = (id) => document.getElementById(id);
const TABS = ["store", "experiments", "search-analytics"];
const METRIC_LABELS = {
  ctr: "click-through rate",
  add_to_cart_rate: "add-to-cart rate",
  conversion_rate: "conversion rate",
  revenue_per_visitor: "revenue per visitor",
  return_rate_7d: "7-day return rate",
};
const CHART_METRICS = ["conversion_rate", "ctr", "revenue_per_visitor", "return_rate_7d"];
const loaded = new Set();
let selected = null;

const pct = (v) => (typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "—");
const day = (iso) => String(iso || "").slice(5, 10);

function figure(title, note, svg, data = {}) {
  return h("figure", { class: "chart", dataset: data }, h("figcaption", {}, title, note ? h("div", { class: "muted" }, note) : null), svg);
}

function table(id, columns, rows) {
  return h("table", { class: "data", id },
    h("thead", {}, h("tr", {}, columns.map(([label, , num]) => h("th", { class: num ? "num" : "" }, label)))),
    h("tbody", {}, rows.map((r) => h("tr", { dataset: r._data || {} }, columns.map(([, f, num]) => h("td", { class: num ? "num" : "" }, f(r)))))));
}

// ---- experiments --------------------------------------------------------------------------

async function renderExperiments() {
  const target = $("experiments-list");
  try {
    const rows = await get("/v1/experiments");
    if (!rows.length) {
      target.replaceChildren(h("p", { class: "muted" }, "No experiments yet."));
      $("experiment-results").replaceChildren();
      return;
    }
    selected = selected && rows.some((r) => r.experiment_id === selected) ? selected : rows[rows.length - 1].experiment_id;
    target.replaceChildren(table("experiments-table", [
      ["experiment", (r) => h("button", { class: "tab", dataset: { show: r.experiment_id } }, r.experiment_id)],
      ["status", (r) => r.status],
      ["started", (r) => String(r.created_at).replace("T", " ").slice(0, 16)],
      ["variants", (r) => r.spec.variants.map((v) => `${v.name} (${v.weight})`).join(", ")],
      ["", (r) => (r.status === "running" ? h("button", { class: "btn small", dataset: { stop: r.experiment_id } }, "stop") : "")],
    ], rows.map((r) => ({ ...r, _data: { experiment: r.experiment_id, status: r.status } }))));
    await renderResults(selected);
  } catch (err) {
    showError(target, err);
  }
}

function comparisonRows(results) {
  return results.comparisons.map((c) => ({
    ...c,
    _data: { metric: c.metric, variant: c.b },
  }));
}

async function renderResults(id) {
  const target = $("experiment-results");
  try {
    const r = await get(`/v1/experiments/${encodeURIComponent(id)}/results`);
    const names = Object.keys(r.variants);
    const srm = r.srm || {};
    const srmText = srm.p_value === null || srm.p_value === undefined
      ? "no exposed users yet"
      : `sample ratio ${Object.entries(srm.counts).map(([k, n]) => `${k} ${n}`).join(" · ")}: χ² ${fmtMetric(srm.chi2)}, p ${fmtMetric(srm.p_value)}`;
    const variants = table("variants-table", [
      ["variant", (v) => v.name],
      ["users", (v) => fmtMetric(v.users), true],
      ["lists shown", (v) => fmtMetric(v.impressions), true],
      ...Object.keys(METRIC_LABELS).map((m) => [METRIC_LABELS[m], (v) => (m === "revenue_per_visitor" ? fmtMetric(v[m]) : pct(v[m])), true]),
    ], names.map((n) => ({ name: n, ...r.variants[n], _data: { variant: n } })));
    const comparisons = table("comparisons-table", [
      ["metric", (c) => METRIC_LABELS[c.metric] || c.metric],
      ["vs", (c) => `${c.b} vs ${c.a}`],
      ["lift", (c) => h("span", { class: c.p_value < 0.05 ? "sig" : "" }, pct(c.lift)), true],
      ["95% interval", (c) => `[${pct(c.lift_ci95[0])}, ${pct(c.lift_ci95[1])}]`, true],
      ["p", (c) => fmtMetric(c.p_value), true],
      ["always-valid p", (c) => fmtMetric(c.sequential_p_value), true],
      ["", (c) => (c.cuped ? "CUPED" : "")],
    ], comparisonRows(r));
    const days = r.over_time.map((d) => day(d.date));
    const charts = CHART_METRICS.map((m) => figure(
      METRIC_LABELS[m], "per variant, cumulative to each day",
      lineChart(names.map((n) => ({ name: n, points: r.over_time.map((d, i) => ({ x: i, y: d.variants[n]?.[m] })) })),
        { xLabel: "day", yLabel: m === "revenue_per_visitor" ? "revenue" : "rate", xLabels: days }),
      { metric: m, days: r.over_time.length }));
    const treated = names.slice(1);
    const lift = figure("lift in conversion rate", "with its 95% interval, per day",
      lineChart(treated.map((n) => ({
        name: n,
        points: r.over_time.map((d, i) => {
          const c = d.comparisons.find((x) => x.b === n && x.metric === "conversion_rate");
          return c ? { x: i, y: c.lift, lo: c.lift_ci95[0], hi: c.lift_ci95[1] } : { x: i, y: NaN };
        }),
      })), { xLabel: "day", yLabel: "lift", xLabels: days, zero: true }), { metric: "lift" });
    target.replaceChildren(
      h("h2", {}, `${r.experiment_id} · ${r.status}`),
      h("p", { class: "muted" }, `${String(r.start).slice(0, 16).replace("T", " ")} → ${String(r.end).slice(0, 16).replace("T", " ")} · exposures on ${r.surfaces.join(", ")} · control ${r.control}`),
      srm.mismatch ? h("div", { class: "warn", id: "srm-warning" }, `Sample-ratio mismatch: ${srmText}. The assignment or the logging is broken; do not trust these results.`) : h("p", { class: "muted", id: "srm" }, srmText),
      variants,
      h("h2", {}, "Comparisons"),
      comparisons,
      h("h2", {}, "Over time"),
      h("div", { class: "charts", id: "experiment-charts" }, charts, lift),
    );
  } catch (err) {
    showError(target, err);
  }
}

// ---- search analytics ---------------------------------------------------------------------

function stat(label, value, key) {
  return h("div", { class: "stat", dataset: { key } }, h("div", { class: "n" }, value), h("div", { class: "label" }, label));
}

async function renderSearchAnalytics() {
  try {
    const a = await get("/v1/analytics/search", { days: 30, top: 20 });
    $("sa-days").textContent = String(a.days);
    $("sa-summary").replaceChildren(
      stat("searches", fmtMetric(a.searches), "searches"),
      stat("click-through", pct(a.ctr), "ctr"),
      stat("without results", pct(a.zero_result_rate), "zero"),
    );
    const dates = a.over_time.map((d) => day(d.date));
    $("sa-charts").replaceChildren(
      figure("searches per day", "", lineChart([{ name: "searches", points: a.over_time.map((d, i) => ({ x: i, y: d.searches })) }], { xLabel: "day", yLabel: "searches", xLabels: dates, zero: true }), { chart: "searches" }),
      figure("click-through per day", "and the share of searches without results", lineChart([
        { name: "ctr", points: a.over_time.map((d, i) => ({ x: i, y: d.ctr })) },
        { name: "no results", points: a.over_time.map((d, i) => ({ x: i, y: d.zero_result_rate })) },
      ], { xLabel: "day", yLabel: "share", xLabels: dates, zero: true }), { chart: "ctr-day" }),
      figure("click-through by position", "clicks on the item at a position / times shown there", lineChart([{ name: "ctr", points: a.ctr_by_position.map((p) => ({ x: p.position, y: p.ctr })) }], { xLabel: "position", yLabel: "ctr", zero: true }), { chart: "ctr-position" }),
    );
    $("sa-top").replaceChildren(a.top_queries.length
      ? table("top-queries", [["query", (q) => q.query], ["searches", (q) => fmtMetric(q.searches), true], ["clicks", (q) => fmtMetric(q.clicks), true], ["click-through", (q) => pct(q.ctr), true], ["no results", (q) => fmtMetric(q.zero_results), true]], a.top_queries.map((q) => ({ ...q, _data: { query: q.query } })))
      : h("p", { class: "muted" }, "No searches yet."));
    $("sa-zero").replaceChildren(a.zero_result_queries.length
      ? table("zero-queries", [["query", (q) => q.query], ["times without results", (q) => fmtMetric(q.zero_results), true]], a.zero_result_queries.map((q) => ({ ...q, _data: { query: q.query } })))
      : h("p", { class: "muted" }, "Every search found something."));
  } catch (err) {
    showError($("sa-summary"), err);
  }
}

// ---- tabs ---------------------------------------------------------------------------------

async function show(tab) {
  if (!TABS.includes(tab)) tab = "store";
  for (const t of TABS) {
    $(`tab-${t}`).classList.toggle("hidden", t !== tab);
    document.querySelector(`.tab[data-tab="${t}"]`).classList.toggle("active", t === tab);
  }
  if (tab === "experiments") await renderExperiments();
  if (tab === "search-analytics") await renderSearchAnalytics();
  loaded.add(tab);
  document.body.dataset.tab = tab;
  document.body.dataset[`${tab.replace("-", "")}Ready`] = String(Number(document.body.dataset[`${tab.replace("-", "")}Ready`] || 0) + 1);
}

document.addEventListener("click", async (e) => {
  const tab = e.target.closest("button[data-tab]");
  if (tab) {
    history.replaceState(null, "", tab.dataset.tab === "store" ? "/admin" : `/admin#${tab.dataset.tab}`);
    await show(tab.dataset.tab);
  }
  const pick = e.target.closest("button[data-show]");
  if (pick) {
    selected = pick.dataset.show;
    await renderResults(selected);
  }
  const stop = e.target.closest("button[data-stop]");
  if (stop) {
    stop.disabled = true;
    try {
      await post(`/v1/experiments/${encodeURIComponent(stop.dataset.stop)}/stop`, {});
    } catch (err) {
      showError($("admin-error"), err);
    }
    await renderExperiments();
  }
});

const initial = location.hash.replace("#", "");
if (initial && initial !== "store") show(initial);
