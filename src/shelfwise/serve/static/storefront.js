// The demo storefront: home (personalised and "because you viewed" rows), search (autocomplete,
// facets, sort, pages) and product pages (similar and bought-together items). Every view and
// click is posted to /v1/events as this visitor, so the next page's recommendations use it.

import {
  ApiError,
  facetsOf,
  flushed,
  get,
  itemsOf,
  listOf,
  openedFrom,
  recentlyViewed,
  remember,
  sessionId,
  suggestionsOf,
  totalOf,
  track,
  visitorId,
} from "/static/api.js";

const view = document.getElementById("view");
const PAGE_SIZE = 24;
const ROW_SIZE = 12;
// Search page parameters kept in the address bar; all of them are passed to /v1/search.
const FILTER_PARAMS = ["category", "brand", "price_min", "price_max", "in_stock"];
// How the query is read ("false" searches the words as typed); reset by a new query.
const READ_PARAMS = ["understand", "correct"];

// ---- small DOM helpers -----------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

// one colour per top-level category, so a row's mix of categories shows at a glance
// (13 hues; the demo store's seven top categories land on seven different ones)
function hue(text) {
  let x = 0;
  for (const ch of text || "") x = (x * 37 + ch.charCodeAt(0)) % 9973;
  return Math.round(((x % 13) * 360) / 13);
}

function thumb(item) {
  const top = (item.category || "").split(" > ")[0];
  const words = (item.title || item.item_id).split(",")[0].split(/\s+/).filter(Boolean);
  const initials = words.slice(-2).map((w) => w[0]).join("").toUpperCase();
  const h0 = hue(top);
  return h("div", {
    class: "thumb",
    style: `background: linear-gradient(135deg, hsl(${h0} 45% 42%), hsl(${(h0 + 40) % 360} 50% 58%))`,
    "aria-hidden": "true",
  }, initials);
}

function price(value) {
  return typeof value === "number" && Number.isFinite(value) ? `$${value.toFixed(2)}` : "";
}

function toast(text) {
  const t = h("div", { class: "toast", role: "status" }, text);
  document.body.append(t);
  setTimeout(() => t.remove(), 1800);
}

function errorBox(err) {
  const msg = err instanceof ApiError ? `${err.status}: ${JSON.stringify(err.detail)}` : String(err);
  return h("div", { class: "error" }, `Something went wrong: ${msg}`);
}

/** A product card linking to its page; a click posts a `click` event first. */
function card(item, { query, why } = {}) {
  const href = `/product/${encodeURIComponent(item.item_id)}`;
  return h(
    "a",
    {
      class: "card",
      href,
      dataset: { itemId: item.item_id, category: item.category || "" },
      onclick: () => {
        openedFrom(item.item_id, item.request_id);
        track("click", { item_id: item.item_id, query, request_id: item.request_id });
      },
    },
    thumb(item),
    h("span", { class: "title" }, item.title || item.item_id),
    h("span", { class: "meta" }, [item.brand, (item.category || "").split(" > ").pop()].filter(Boolean).join(" · ")),
    h("span", { class: "price" }, price(item.price)),
    why ? h("span", { class: "why" }, why) : null,
  );
}

/** A titled horizontal shelf of cards (hidden when empty unless `keepEmpty`). */
function shelf(id, title, items, { note, keepEmpty = false, query } = {}) {
  if (!items.length && !keepEmpty) return null;
  return h(
    "section",
    { class: "shelf", id, dataset: { count: items.length } },
    h("h2", {}, title, note ? h("span", { class: "muted" }, `  ${note}`) : null),
    items.length
      ? h("div", { class: "row" }, items.map((it) => card(it, { query })))
      : h("p", { class: "empty" }, "Nothing here yet."),
  );
}

async function optional(promise) {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return null;
    throw err;
  }
}

function markReady() {
  document.body.dataset.ready = String(Number(document.body.dataset.ready || 0) + 1);
}

// ---- autocomplete ------------------------------------------------------------------------

function setupSearchBox() {
  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const list = document.getElementById("suggest");
  let seq = 0;
  let timer = 0;
  let active = -1;
  let current = [];

  const close = () => {
    clearTimeout(timer);
    seq++; // answers still on their way are dropped
    list.classList.add("hidden");
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    active = -1;
  };
  const go = (s) => {
    close();
    if (s.item_id) {
      track("click", { item_id: s.item_id, query: input.value });
      location.href = `/product/${encodeURIComponent(s.item_id)}`;
    } else {
      input.value = s.text;
      submit(s.text);
    }
  };
  const highlight = (text, prefix) => {
    const i = text.toLowerCase().indexOf(prefix.toLowerCase());
    if (!prefix || i < 0) return [text];
    return [text.slice(0, i), h("mark", {}, text.slice(i, i + prefix.length)), text.slice(i + prefix.length)];
  };
  const show = (items, prefix) => {
    current = items;
    active = -1;
    if (!items.length) return close();
    list.replaceChildren(
      ...items.map((s, i) =>
        h(
          "li",
          {
            role: "option",
            dataset: { index: i },
            onmousedown: (e) => {
              e.preventDefault();
              go(s);
            },
          },
          h("span", {}, highlight(s.text, prefix)),
          s.kind ? h("span", { class: "kind" }, s.kind) : null,
        ),
      ),
    );
    list.classList.remove("hidden");
    input.setAttribute("aria-expanded", "true");
  };
  const move = (d) => {
    const lis = list.querySelectorAll("li");
    if (!lis.length) return;
    active = (active + d + lis.length) % lis.length;
    lis.forEach((li, i) => li.classList.toggle("active", i === active));
  };

  input.addEventListener("input", () => {
    clearTimeout(timer);
    const prefix = input.value.trim();
    if (!prefix) return close();
    timer = setTimeout(async () => {
      const mine = ++seq;
      try {
        const body = await get("/v1/autocomplete", { q: prefix, k: 8 });
        if (mine === seq && document.activeElement === input) show(suggestionsOf(body), prefix);
      } catch {
        if (mine === seq) close();
      }
    }, 90);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") move(1);
    else if (e.key === "ArrowUp") move(-1);
    else if (e.key === "Escape") close();
    else if (e.key === "Enter" && active >= 0) {
      e.preventDefault();
      go(current[active]);
      return;
    } else return;
    e.preventDefault();
  });
  input.addEventListener("blur", () => setTimeout(close, 120));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    close();
    submit(input.value.trim());
  });

  function submit(q) {
    if (!q) return;
    if (location.pathname === "/search") {
      navigate({ q });
    } else {
      location.href = `/search?q=${encodeURIComponent(q)}`;
    }
  }
  const q = new URLSearchParams(location.search).get("q");
  if (q && location.pathname === "/search") input.value = q;
}

// ---- search page -------------------------------------------------------------------------

function searchState() {
  const p = new URLSearchParams(location.search);
  const state = { q: p.get("q") || "", sort: p.get("sort") || "relevance", page: Number(p.get("page") || 1) };
  for (const k of [...FILTER_PARAMS, ...READ_PARAMS]) if (p.get(k)) state[k] = p.get(k);
  if (!Number.isInteger(state.page) || state.page < 1) state.page = 1;
  return state;
}

function navigate(changes) {
  const state = { ...searchState(), page: 1, ...changes };
  if (changes.q !== undefined) {
    for (const k of [...FILTER_PARAMS, ...READ_PARAMS]) if (!(k in changes)) delete state[k];
  }
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (v === undefined || v === null || v === "") continue;
    if (k === "sort" && v === "relevance") continue;
    if (k === "page" && v === 1) continue;
    p.set(k, v);
  }
  history.pushState(null, "", `/search?${p}`);
  renderSearch();
}

function facetFilter(name, v) {
  // price bands ("10-25", "1000+", or {min, max}) filter by range; other facets by value
  if (v.min !== undefined || v.max !== undefined) return { price_min: v.min ?? "", price_max: v.max ?? "" };
  const band = name === "price" && String(v.value).match(/^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?)|\+)$/);
  if (band) return { price_min: band[1], price_max: band[2] ?? "" };
  return { [name]: v.value };
}

function facetActive(state, name, v) {
  const f = facetFilter(name, v);
  return Object.entries(f).every(([k, x]) => String(state[k] ?? "") === String(x ?? ""));
}

function facetLabel(name, v) {
  if (v.label) return v.label;
  if (name === "price") return String(v.value).replace(/^(\d+)-(\d+)$/, "$$$1 – $$$2").replace(/^(\d+)\+$/, "$$$1 and up");
  if (name === "category") return String(v.value).split(" > ").pop();
  return String(v.value);
}

const depth = (path) => String(path).split(" > ").length;

/**
 * The values of a facet worth showing. Categories are a tree: without a category filter the
 * top level, with one its children (and itself, to switch it off). Counts of a finer level
 * are summed up when the API only counts leaves.
 */
function displayValues(f, state) {
  if (f.name !== "category") return f.values;
  const parent = state.category || "";
  const want = parent ? depth(parent) + 1 : 1;
  const under = (v) => !parent || String(v.value).startsWith(`${parent} > `);
  const exact = f.values.filter((v) => under(v) && depth(v.value) === want);
  let shown = exact;
  if (!exact.length) {
    const sums = new Map();
    const finest = Math.max(...f.values.map((v) => depth(v.value)));
    for (const v of f.values) {
      if (!under(v) || depth(v.value) !== finest || finest < want) continue;
      const key = String(v.value).split(" > ").slice(0, want).join(" > ");
      sums.set(key, (sums.get(key) || 0) + Number(v.count || 0));
    }
    shown = [...sums].map(([value, count]) => ({ value, count })).sort((a, b) => b.count - a.count);
  }
  const self = parent ? f.values.find((v) => v.value === parent) : null;
  return self ? [self, ...shown] : shown;
}

let searchSeq = 0;

async function renderSearch() {
  const state = searchState();
  const mine = ++searchSeq;
  document.getElementById("q").value = state.q;
  document.title = state.q ? `${state.q} — Shelfwise` : "Search — Shelfwise";
  if (!state.q && !FILTER_PARAMS.some((k) => state[k])) {
    view.replaceChildren(h("p", { class: "muted" }, "Type a query above."));
    markReady();
    return;
  }
  if (state.q && sessionStorage.getItem("shelfwise.lastQuery") !== state.q) {
    sessionStorage.setItem("shelfwise.lastQuery", state.q);
    track("search", { query: state.q });
  }
  let body;
  try {
    body = await get("/v1/search", {
      q: state.q,
      per_page: PAGE_SIZE,
      page: state.page,
      sort: state.sort === "relevance" ? undefined : state.sort,
      user: visitorId(),
      facets: ["category", "brand", "price"],
      ...Object.fromEntries([...FILTER_PARAMS, ...READ_PARAMS].map((k) => [k, state[k]])),
    });
  } catch (err) {
    if (mine === searchSeq) view.replaceChildren(errorBox(err));
    markReady();
    return;
  }
  if (mine !== searchSeq) return;
  const items = itemsOf(body);
  const total = totalOf(body, items.length);
  const facets = facetsOf(body).filter((f) => displayValues(f, state).length);

  const chips = FILTER_PARAMS.filter((k) => state[k]).map((k) =>
    h("span", { class: "chip", dataset: { filter: k } }, `${k.replace("_", " ")}: ${state[k]}`,
      h("button", { title: "remove", "aria-label": `remove ${k}`, onclick: () => navigate({ [k]: "" }) }, "×")),
  );
  const sort = h(
    "select",
    { id: "sort", "aria-label": "Sort", onchange: (e) => navigate({ sort: e.target.value }) },
    [["relevance", "Relevance"], ["price_asc", "Price: low to high"], ["price_desc", "Price: high to low"],
      ["popularity", "Popularity"], ["newest", "Newest"]].map(([v, label]) =>
      h("option", { value: v, selected: state.sort === v }, label)),
  );
  const aside = h(
    "aside",
    { class: "facets", id: "facets" },
    facets.map((f) =>
      h("div", { dataset: { facet: f.name } },
        h("h3", {}, f.name.replace("_", " ")),
        h("ul", {}, displayValues(f, state).slice(0, 12).map((v) => {
          const on = facetActive(state, f.name, v);
          const filt = facetFilter(f.name, v);
          return h("li", {},
            h("a", {
              href: "#",
              class: on ? "on" : "",
              dataset: { facet: f.name, value: String(v.value) },
              onclick: (e) => {
                e.preventDefault();
                if (on && f.name === "category") {
                  // switching a category off goes up one level of the tree
                  navigate({ category: String(v.value).split(" > ").slice(0, -1).join(" > ") });
                } else {
                  navigate(on ? Object.fromEntries(Object.keys(filt).map((k) => [k, ""])) : filt);
                }
              },
            }, h("span", {}, facetLabel(f.name, v)), h("span", { class: "count" }, v.count)));
        }))),
    ),
  );
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const results = h(
    "div",
    {},
    queryNotice(body.query_info || {}, state),
    h("div", { class: "toolbar" },
      h("div", {},
        h("strong", { id: "total", dataset: { total } }, `${total.toLocaleString()} results`),
        state.q ? ` for “${state.q}”` : state.category ? ` in ${state.category}` : "",
        h("div", { class: "chips" }, chips)),
      h("label", { class: "muted" }, "Sort ", sort)),
    items.length
      ? h("div", { class: "grid", id: "results" }, items.map((it) => card(it, { query: state.q })))
      : h("p", { id: "results", class: "muted" }, "No products match. Try fewer filters or other words."),
    pages > 1
      ? h("div", { class: "pager" },
          h("button", { disabled: state.page <= 1, onclick: () => navigate({ ...state, page: state.page - 1 }) }, "‹ Previous"),
          h("span", { class: "muted" }, `page ${state.page} of ${pages}`),
          h("button", { disabled: state.page >= pages, onclick: () => navigate({ ...state, page: state.page + 1 }) }, "Next ›"))
      : null,
  );
  view.replaceChildren(h("div", { class: "layout" }, aside, results));
  if (!items.length) {
    // nothing found: offer what sells instead of an empty page
    const recs = await get(`/v1/users/${encodeURIComponent(visitorId())}/recommendations`, {
      k: ROW_SIZE, page_type: "search", session: sessionId(),
    }).catch(() => null);
    const row = shelf("row-instead", "Popular right now", itemsOf(recs));
    if (row && mine === searchSeq) results.append(row);
  }
  markReady();
}

// ---- what the search understood -----------------------------------------------------------

const DETECTED = ["price", "brand", "category"];

/** The query with the service's corrections applied to its words ("wireles" -> "wireless"). */
function correctedText(text, corrected) {
  return text.replace(/[^\s]+/gu, (word) => {
    const key = word.toLowerCase();
    return Object.hasOwn(corrected, key) ? corrected[key] : word;
  });
}

function detectedLabel(kind, part) {
  if (kind === "price") {
    if (part.preference === "cheap") return `price: cheap (up to ${price(part.max)})`;
    if (part.min != null && part.max != null) return `price: ${price(part.min)} – ${price(part.max)}`;
    if (part.max != null) return `price: under ${price(part.max)}`;
    if (part.min != null) return `price: over ${price(part.min)}`;
    return `price: ${part.source}`;
  }
  const how = part.applied === "boost" ? "favouring " : "";
  return `${how}${kind}: ${kind === "category" ? String(part.value).split(" > ").pop() : part.value}`;
}

/**
 * Undo one detected filter: search the words that were left (`searched`) as typed, with the
 * other detected filters and the shopper's own filters kept as explicit ones.
 */
function undoDetected(info, state, kind) {
  const keep = {};
  for (const k of FILTER_PARAMS) keep[k] = state[k] || "";
  for (const other of DETECTED) {
    const part = info[other];
    if (other === kind || !part || part.applied !== "filter") continue;
    if (other === "price") {
      if (part.min != null && !keep.price_min) keep.price_min = part.min;
      if (part.max != null && !keep.price_max) keep.price_max = part.max;
    } else if (!keep[other]) keep[other] = part.value;
  }
  // words removed as price phrases go too; brand and category words stay searched words
  const words = kind === "price" ? info.searched || state.q : state.q;
  navigate({ ...keep, q: words, understand: "false" });
}

/**
 * "Showing results for X — search instead for Y" when the service corrected words, read
 * price / brand / category from the query or dropped words; each detected filter is a chip
 * whose × undoes it. Nothing when the words were searched as typed.
 */
function queryNotice(info, state) {
  const corrected = info.corrected || {};
  const fixed = Object.keys(corrected).length > 0;
  const detected = DETECTED.filter((k) => info[k] && ["filter", "boost", "relaxed"].includes(info[k].applied));
  const removed = (info.removed || []).length > 0;
  const dropped = (info.dropped || []).filter(Boolean);
  const suggestions = (info.suggestions || []).filter((s) => s && s !== state.q);
  const matched = info.matched_in || {};
  const names = ["title", "brand", "category"].filter((f) => f in matched);
  const mentioned = names.length && names.every((f) => !matched[f])
    ? Object.keys(matched).filter((f) => matched[f] > 0)
    : [];
  if (!fixed && !detected.length && !removed && !dropped.length && !suggestions.length && !mentioned.length) {
    return null;
  }
  const searched = correctedText(info.searched ?? state.q, corrected).trim();
  const shown = dropped.length
    ? searched.split(/\s+/).filter((w) => !dropped.includes(w.toLowerCase())).join(" ")
    : searched;
  const lines = [];
  if (fixed || removed || detected.some((k) => info[k].applied === "filter") || dropped.length) {
    const instead = fixed || removed || detected.length
      ? [" — search instead for ", h("a", {
          href: "#",
          id: "search-instead",
          onclick: (e) => {
            e.preventDefault();
            navigate({ q: state.q, understand: "false", correct: "false" });
          },
        }, state.q)]
      : null;
    lines.push(h("p", { id: "showing" }, "Showing results for ",
      h("strong", { id: "showing-for" }, shown || state.q), instead));
  }
  if (dropped.length) {
    lines.push(h("p", { class: "muted", id: "dropped", dataset: { words: dropped.join(" ") } },
      `No product matches ${dropped.map((w) => `“${w}”`).join(", ")}: left out of the search.`));
  }
  if (mentioned.length) {
    lines.push(h("p", { class: "muted", id: "matched-in", dataset: { fields: mentioned.join(" ") } },
      `No product is called “${shown || state.q}”: these mention it in their ${mentioned.join(" or ")}.`));
  }
  if (detected.length) {
    lines.push(h("div", { class: "chips", id: "detected" }, detected.map((kind) => {
      const part = info[kind];
      const relaxed = part.applied === "relaxed";
      return h("span", { class: `chip detected${relaxed ? " relaxed" : ""}`, dataset: { detected: kind, applied: part.applied } },
        detectedLabel(kind, part), relaxed ? " (nothing matched it: not applied)" : "",
        relaxed ? null : h("button", {
          title: "undo", "aria-label": `undo ${kind}`, onclick: () => undoDetected(info, state, kind),
        }, "×"));
    })));
  }
  if (suggestions.length) {
    lines.push(h("p", { id: "did-you-mean" }, "Did you mean ",
      suggestions.slice(0, 5).map((s, i) => [i ? ", " : "", h("a", {
        href: `/search?q=${encodeURIComponent(s)}`,
        onclick: (e) => {
          e.preventDefault();
          navigate({ q: s });
        },
      }, s)]), "?"));
  }
  return h("div", { class: "query-info", id: "query-info" }, lines);
}

// ---- product page ------------------------------------------------------------------------

async function renderProduct(itemId) {
  let item;
  try {
    item = await get(`/v1/items/${encodeURIComponent(itemId)}`);
  } catch (err) {
    view.replaceChildren(
      err instanceof ApiError && err.status === 404
        ? h("div", {}, h("h1", {}, "Product not found"), h("p", {}, h("a", { href: "/" }, "Back to the shop")))
        : errorBox(err),
    );
    markReady();
    return;
  }
  document.title = `${item.title || item.item_id} — Shelfwise`;
  const fromList = listOf(item.item_id); // the list this product was opened from, if any
  track("view", { item_id: item.item_id, request_id: fromList });
  remember(item);

  const parts = (item.category || "").split(" > ").filter(Boolean);
  const crumbs = h("div", { class: "crumbs" }, h("a", { href: "/" }, "Home"),
    parts.map((p, i) => [" › ", h("a", { href: `/search?category=${encodeURIComponent(parts.slice(0, i + 1).join(" > "))}` }, p)]));
  const attrs = Object.entries(item.attributes || {}).filter(([, v]) => typeof v !== "object");
  const detail = h(
    "div",
    { class: "product", id: "product", dataset: { itemId: item.item_id, category: item.category || "" } },
    thumb(item),
    h("div", {},
      h("h1", {}, item.title || item.item_id),
      h("p", { class: "price" }, price(item.price)),
      h("p", {}, item.description || ""),
      h("dl", {},
        item.brand ? [h("dt", {}, "Brand"), h("dd", {}, item.brand)] : null,
        h("dt", {}, "Category"), h("dd", {}, item.category || "—"),
        h("dt", {}, "In stock"), h("dd", {}, item.in_stock === false ? "no" : "yes"),
        attrs.map(([k, v]) => [h("dt", {}, k.replaceAll("_", " ")), h("dd", {}, String(v))])),
      h("div", { class: "actions" },
        h("button", { class: "btn", id: "add-to-cart", onclick: async () => {
          await track("add_to_cart", { item_id: item.item_id, value: 1, request_id: fromList });
          toast("Added to cart");
        } }, "Add to cart"),
        h("button", { class: "btn alt", id: "buy", onclick: async () => {
          await track("purchase", { item_id: item.item_id, value: item.price ?? undefined, request_id: fromList });
          toast("Thank you for your order");
        } }, "Buy now"))),
  );
  view.replaceChildren(crumbs, detail, h("div", { id: "shelves" }, h("p", { class: "muted" }, "Loading suggestions…")));

  const [similar, together, recs] = await Promise.all([
    optional(get(`/v1/items/${encodeURIComponent(item.item_id)}/similar`, { k: ROW_SIZE })).catch(() => null),
    optional(get(`/v1/items/${encodeURIComponent(item.item_id)}/bought-together`, { k: 8 })).catch(() => null),
    get(`/v1/users/${encodeURIComponent(visitorId())}/recommendations`, {
      k: 3 * ROW_SIZE, page_type: "product", item: item.item_id, session: sessionId(),
      category: item.category || undefined, exclude: [item.item_id],
    }).catch(() => null),
  ]);
  // the third row shows what the first two do not
  const shown = new Set([item.item_id, ...itemsOf(similar), ...itemsOf(together)].map((x) => x.item_id ?? x));
  const more = itemsOf(recs).filter((x) => !shown.has(x.item_id)).slice(0, ROW_SIZE);
  document.getElementById("shelves").replaceChildren(
    ...[
      shelf("row-similar", "Similar items", itemsOf(similar), { keepEmpty: true }),
      shelf("row-together", "Frequently bought together", itemsOf(together), { keepEmpty: true }),
      more.length >= 4 ? shelf("row-for-you", "You may also like", more) : null,
    ].filter(Boolean),
  );
  markReady();
}

// ---- home page ---------------------------------------------------------------------------

async function renderHome() {
  document.title = "Shelfwise demo store";
  const recent = recentlyViewed();
  const last = recent[0];
  const [recs, because] = await Promise.all([
    get(`/v1/users/${encodeURIComponent(visitorId())}/recommendations`, {
      k: ROW_SIZE, page_type: "home", session: sessionId(),
    }).catch((err) => ({ error: err })),
    last
      ? optional(get(`/v1/items/${encodeURIComponent(last.item_id)}/similar`, { k: ROW_SIZE })).catch(() => null)
      : null,
  ]);
  const personal = itemsOf(recs);
  const strategy = recs && (recs.strategy || recs.source);
  const shelves = [
    recs && recs.error ? errorBox(recs.error) : null,
    shelf("row-personal", recent.length ? "Recommended for you" : "Popular right now", personal, {
      keepEmpty: true,
      note: strategy ? `(${strategy})` : "",
    }),
    last ? shelf("row-because", `Because you viewed ${last.title || last.item_id}`, itemsOf(because)) : null,
    recent.length > 1 ? shelf("row-recent", "Recently viewed", recent.slice(0, ROW_SIZE)) : null,
  ].filter(Boolean);
  view.replaceChildren(
    ...[
      h("h1", {}, recent.length ? "Welcome back" : "Welcome to the Shelfwise demo store"),
      recent.length ? null : h("p", { class: "muted" }, "Search or open a few products: the rows below follow what you look at."),
      ...shelves,
    ].filter(Boolean),
  );
  markReady();
}

// ---- router ------------------------------------------------------------------------------

async function route() {
  const path = location.pathname;
  try {
    if (path === "/search") await renderSearch();
    else if (path.startsWith("/product/")) await renderProduct(decodeURIComponent(path.slice("/product/".length)));
    else await renderHome();
  } catch (err) {
    view.replaceChildren(errorBox(err));
    markReady();
  }
}

window.shelfwise = { flushed, visitorId, sessionId, track };
document.getElementById("visitor").textContent = `visitor ${visitorId()} · session ${sessionId()}`;
setupSearchBox();
window.addEventListener("popstate", () => {
  if (location.pathname === "/search") renderSearch();
});
route();
