// The report's pages: Overview, Compare, prompt drill-down, model page, reference set page.
// Data files (data/*.js) assign into window.BENCH_REPORT and are loaded with
// <script> tags only when a page needs them: file:// pages cannot fetch() JSON.
// Nothing here contacts any host; every text goes in through textContent.
"use strict";
(function () {
  const R = (window.BENCH_REPORT = window.BENCH_REPORT || {});
  const app = document.getElementById("app");
  const PAGE_ROWS = 50;
  const pending = {};

  function load(key) {
    if (R[key]) return Promise.resolve(R[key]);
    if (!pending[key]) {
      pending[key] = new Promise(function (resolve, reject) {
        const script = document.createElement("script");
        script.src = "data/" + key + ".js";
        script.onload = function () {
          if (R[key]) resolve(R[key]);
          else reject(new Error("data/" + key + ".js holds no data"));
        };
        script.onerror = function () {
          delete pending[key];
          reject(new Error("cannot load data/" + key + ".js"));
        };
        document.head.appendChild(script);
      });
    }
    return pending[key];
  }

  // --- small DOM helpers ------------------------------------------------------------------
  function el(tag, attrs) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (let i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(node, c); });
    else node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  function fill(node) {
    node.replaceChildren();
    append(node, Array.prototype.slice.call(arguments, 1));
  }
  function fmt(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1000 ? v.toFixed(1) : v.toFixed(3);
  }
  function num(v, column) {
    return el("span", { class: "num", "data-column": column, "data-value": v === null ? "" : String(v), text: fmt(v) });
  }
  // A figure and its 95% interval, "0.312 [0.301, 0.322]"; each number a span carrying its exact value.
  function figureCell(v, mean, low, high, format) {
    if (v(low) === undefined) return numAs(v(mean), mean, format);  // a column group without an interval
    if (v(mean) === null || v(mean) === undefined) {  // nothing to show: "–" (the empty bounds kept, hidden)
      return [num(null, mean), el("span", { hidden: true }, num(v(low), low), num(v(high), high))];
    }
    return el("span", { class: "figure" }, numAs(v(mean), mean, format), el("span", { class: "ci" }, " [",
      numAs(v(low), low, format), ", ", numAs(v(high), high, format), "]"));
  }
  // A rank and its interval, "2 (1–3)", or "1" when the interval is the rank itself (a metric's rank
  // interval without its rank: "1–3", or "2"). Every number stays a span with its exact value, hidden or not.
  function intervalCell(v, rank, low, high, open, close) {
    const parts = rank === null ? [] : [num(v(rank), rank)];
    if (v(low) === null || v(low) === undefined) return parts;
    const lowSpan = num(v(low), low), highSpan = num(v(high), high);
    if (v(low) === v(high) && (rank === null || v(rank) === v(low))) {
      return parts.concat(rank === null ? [lowSpan, el("span", { hidden: true }, highSpan)]
                                        : [el("span", { hidden: true }, lowSpan, highSpan)]);
    }
    return parts.concat([rank === null ? "" : " ", open, lowSpan, "–", highSpan, close]);
  }
  function numAs(v, column, format) {
    const missing = v === null || v === undefined;
    return el("span", { class: "num", "data-column": column, "data-value": missing ? "" : String(v), text: missing ? "–" : format(v) });
  }
  function signed(v) { return (v >= 0 ? "+" : "") + v.toFixed(2); }  // as `bench leaderboard` prints them
  function three(v) { return Math.abs(v) >= 1000 ? v.toFixed(1) : v.toFixed(3); }
  function sig4(v) { return String(Number(v.toPrecision(4))); }  // as `bench leaderboard` prints distribution metrics (.4g)
  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, "");
    const [path, query] = raw.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    return { page: parts[0] || "overview", args: parts.slice(1), query: new URLSearchParams(query || "") };
  }
  function setQuery(page, params) {
    const query = new URLSearchParams(params).toString();
    history.replaceState(null, "", "#/" + page + (query ? "?" + query : ""));
  }
  function promptHref(file, model, index) {
    return "#/prompt/" + encodeURIComponent(file) + "?" + new URLSearchParams({ model: model, i: index });
  }
  function modelHref(model) { return "#/model/" + encodeURIComponent(model); }
  function thumb(src, full, alt) {
    if (!src) return el("div", { class: "missing", text: "no image" });
    return el("img", { class: "thumb", src: src, "data-full": full, alt: alt, loading: "lazy" });
  }
  function overview() { return R.overview; }

  // --- Overview ---------------------------------------------------------------------------
  const sortState = { column: null, desc: false };
  const HIDDEN_COLUMNS = ["computed_at"];  // in the CSV export, not on the page

  function leaderboardTable(category) {
    const lb = overview().leaderboard;
    const idx = {};
    lb.columns.forEach(function (c, i) { idx[c] = i; });
    if (!lb.rows.length) {
      return el("p", { id: "leaderboard", class: "empty",
        text: "No model has scores yet: run `bench run` (or `make demo`); `bench status` names any model that failed." });
    }
    let rows = lb.rows.filter(function (r) { return r[idx.category] === category; });
    const metricGroups = lb.layout.metrics;
    const extras = lb.layout.extra;
    if (sortState.column && sortState.column in idx) {
      const i = idx[sortState.column];
      rows = rows.slice().sort(function (a, b) {
        const x = a[i], y = b[i];
        if (x === y) return 0;
        if (x === null) return 1;
        if (y === null) return -1;
        const cmp = x < y ? -1 : 1;
        return sortState.desc ? -cmp : cmp;
      });
    }
    function header(label, column) {
      const cls = "sortable" + (sortState.column === column ? (sortState.desc ? " sorted-desc" : " sorted-asc") : "");
      return el("th", {
        class: cls, "data-sort": column, text: label,
        onclick: function () {
          sortState.desc = sortState.column === column ? !sortState.desc : false;
          sortState.column = column;
          renderOverview();
        },
      });
    }
    // What `bench leaderboard` shows: rank (interval), tier, model, composite and each metric as
    // mean [low, high]; the raw interval columns sit inside those cells (and whole in the CSV export).
    const inCells = ["rank", "rank_low", "rank_high", "tier", "composite", "composite_ci_low", "composite_ci_high",
                     "human_rating", "human_ci_low", "human_ci_high", "human_votes"];
    const shownExtras = extras.filter(function (c) { return inCells.indexOf(c) < 0 && HIDDEN_COLUMNS.indexOf(c) < 0; });
    const has = function (c) { return c in idx; };
    const head = el("tr", null, header("rank", "rank"), has("tier") ? header("tier", "tier") : null, header("model", "model"),
      shownExtras.filter(function (c) { return c !== "gpu_seconds"; }).map(function (c) { return header(c, c); }),
      has("composite") ? header("composite", "composite") : null,
      has("human_rating") ? header("human (arena)", "human_rating") : null,
      metricGroups.map(function (g) { return header(g.name, g.name + "_mean"); }),
      has("gpu_seconds") ? header("gpu_seconds", "gpu_seconds") : null);
    const body = rows.map(function (r) {
      const v = function (c) { return r[idx[c]]; };
      return el("tr", { "data-model": v("model"), "data-category": v("category") },
        el("td", { class: "rank" }, intervalCell(v, "rank", "rank_low", "rank_high", "(", ")")),
        has("tier") ? el("td", null, num(v("tier"), "tier")) : null,
        el("td", null, el("a", { href: modelHref(v("model")), text: v("model") })),
        shownExtras.filter(function (c) { return c !== "gpu_seconds"; }).map(function (c) { return el("td", null, num(v(c), c)); }),
        has("composite") ? el("td", { "data-metric": "composite" }, figureCell(v, "composite", "composite_ci_low", "composite_ci_high", signed)) : null,
        has("human_rating") ? el("td", { "data-metric": "human" }, figureCell(v, "human_rating", "human_ci_low", "human_ci_high", three),
          has("human_votes") ? el("span", { class: "n", hidden: v("human_rating") === null }, " votes=", num(v("human_votes"), "human_votes")) : null) : null,
        metricGroups.map(function (g) {
          const col = function (f) { return g.name + "_" + f; };
          const parts = [figureCell(v, col("mean"), col("ci_low"), col("ci_high"), three)];
          if (has(col("n"))) parts.push(el("span", { class: "n" }, " n=", num(v(col("n")), col("n"))));
          if (has(col("rank"))) parts.push(el("span", { class: "n" }, " #", intervalCell(v, col("rank"), col("rank_low"), col("rank_high"), "(", ")")));
          return el("td", { "data-metric": g.name, title: has(col("tier")) && v(col("tier")) !== null ? g.name + " tier " + v(col("tier")) : null }, parts);
        }),
        has("gpu_seconds") ? el("td", null, num(v("gpu_seconds"), "gpu_seconds")) : null);
    });
    return el("table", { class: "leaderboard", id: "leaderboard" }, el("thead", null, head), el("tbody", null, body));
  }

  function renderOverview() {
    const o = overview();
    const q = parseHash().query;
    const category = q.get("category") || "all";
    const select = el("select", { id: "category", onchange: function (e) { setQuery("overview", { category: e.target.value }); renderOverview(); } },
      ["all"].concat(o.categories).map(function (c) { return el("option", { value: c, selected: c === category, text: c === "all" ? "all (overall)" : c }); }));
    const withCost = o.metrics.filter(function (m) { return m.plots.cost; });
    const costImg = el("img", { id: "cost-plot", alt: "quality against cost" });
    function showCost(name) {
      const m = withCost.find(function (x) { return x.name === name; });
      if (m) { costImg.src = m.plots.cost; costImg.alt = m.name + " against GPU-seconds per image"; }
    }
    const costSelect = el("select", { id: "cost-metric", onchange: function (e) { showCost(e.target.value); } },
      withCost.map(function (m) { return el("option", { value: m.name, text: m.name }); }));
    if (withCost.length) showCost(withCost[0].name);
    const health = el("table", { id: "health" },
      el("thead", null, el("tr", null, ["model", "expected", "images", "failed", "missing", "errors"].map(function (h) { return el("th", { text: h }); }))),
      el("tbody", null, o.health.map(function (h) {
        return el("tr", { "data-model": h.model },
          el("td", null, el("a", { href: modelHref(h.model), text: h.model })),
          ["expected", "images", "failed", "missing"].map(function (k) { return el("td", { class: "num " + (k !== "images" && h[k] ? "fail" : ""), "data-column": k, text: h[k] }); }),
          el("td", { class: "error" }, h.errors.map(function (e) { return e.category + ": " + e.error; }).join("\n")));
      })));
    fill(app, 
      el("h2", { text: "Leaderboard" }),
      el("p", { class: "muted", text: "Mean [95% bootstrap interval over prompts] and n per metric; click a header to sort." }),
      el("div", { class: "controls" }, el("label", null, "category ", select)),
      leaderboardTable(category),
      Object.keys(o.leaders).length ? el("p", { class: "muted" }, "Leaders: " + Object.entries(o.leaders).map(function (e) { return e[0] + " → " + e[1]; }).join(" · ")) : null,
      distributionSection(category),
      el("h2", { text: "Means with 95% intervals (overall)" }),
      el("div", { class: "plots", id: "mean-plots" }, o.metrics.filter(function (m) { return m.plots.means; }).map(function (m) {
        return el("figure", null, el("img", { src: m.plots.means, alt: m.name + " means" }), el("figcaption", { class: "muted", text: m.name + (m.higher_is_better ? " (higher is better)" : " (lower is better)") }));
      })),
      el("h2", { text: "Quality against cost" }),
      withCost.length ? el("div", null, el("div", { class: "controls" }, el("label", null, "metric ", costSelect)), costImg,
        el("p", { class: "muted", text: "Orange: the Pareto front (no other model is both cheaper and better)." })) : el("p", { class: "muted", text: "No GPU-seconds recorded." }),
      el("h2", { text: "Failed and missing images" }),
      health,
      el("h2", { text: "Export" }),
      el("ul", null, o.exports.map(function (f) { return el("li", null, el("a", { href: f, text: f })); })));
  }

  // --- Distribution metrics (against a reference set) -------------------------------------------
  function referenceHref(name) { return "#/reference/" + encodeURIComponent(name); }
  // One line per model, as `bench leaderboard` prints it: value [95% CI] #rank/ranked among, † where n is too
  // small to compare (the note says why), and the model's n (generated/reference).
  function distributionTable(rows, metrics, attrs) {
    const byModel = {};
    rows.forEach(function (r) { (byModel[r.model] = byModel[r.model] || {})[r.metric] = r; });
    const first = metrics[0];
    const models = Object.keys(byModel).sort(function (a, b) {
      const x = (byModel[a][first] || {}).rank, y = (byModel[b][first] || {}).rank;
      return (x === undefined) - (y === undefined) || (x || 0) - (y || 0) || (a < b ? -1 : a > b ? 1 : 0);
    });
    const head = el("tr", null, el("th", { text: "model" }), el("th", { text: "n (generated/reference)" }),
      metrics.map(function (m) {
        const any = rows.find(function (r) { return r.metric === m; });
        return el("th", { "data-metric": m, text: m + (any && any.lower_is_better ? " ↓" : " ↑") });
      }));
    const body = models.map(function (model) {
      const cells = byModel[model];
      const one = cells[Object.keys(cells)[0]];
      const stale = Object.values(cells).some(function (r) { return r.current === false; });
      return el("tr", { "data-model": model },
        el("td", null, el("a", { href: modelHref(model), text: model })),
        el("td", { class: "n" }, num(one.n_generated, "n_generated"), "/", num(one.n_reference, "n_reference"),
          stale ? el("span", { class: "stale", title: "scored against another version of this reference set", text: " ‡" }) : null),
        metrics.map(function (m) {
          const r = cells[m];
          if (!r) return el("td", { "data-metric": m, text: "–" });
          const v = function (c) { return r[c]; };
          return el("td", { "data-metric": m, title: r.note || null },
            figureCell(v, "value", "ci_low", "ci_high", sig4),
            el("span", { class: "n" }, " #", num(r.rank, "rank"), "/", num(r.ranked_among, "ranked_among")),
            r.comparable === false ? el("span", { class: "marker fail", text: "†" }) : null);
        }));
    });
    return el("table", Object.assign({ class: "distribution" }, attrs || {}), el("thead", null, head), el("tbody", null, body));
  }
  function distributionNotes(rows) {
    const notes = {};
    rows.forEach(function (r) { if (r.note) notes[r.metric + ": " + r.note] = true; });
    const lines = Object.keys(notes).sort();
    return lines.length ? el("ul", { class: "notes muted" }, lines.map(function (n) { return el("li", { text: n }); })) : null;
  }
  function distributionSection(category) {
    const d = overview().distribution;
    if (!d || !d.rows.length) return null;
    const rows = d.rows.filter(function (r) { return r.category === category; });
    const names = Object.keys(d.references).filter(function (n) { return rows.some(function (r) { return r.reference === n; }); });
    return el("section", { id: "distribution" },
      el("h2", { text: "Distribution metrics against reference sets" }),
      el("p", { class: "muted", text: "value [95% bootstrap interval] #rank/ranked among rows of the same n, features and reference set; ↓ lower is better, ↑ higher; † n too small to compare with published numbers (compare only at equal n)." }),
      names.length ? names.map(function (name) {
        const mine = rows.filter(function (r) { return r.reference === name; });
        return el("div", { class: "reference", "data-reference": name },
          el("h3", null, "reference set ", el("a", { href: referenceHref(name), text: name })),
          distributionTable(mine, d.metrics.filter(function (m) { return mine.some(function (r) { return r.metric === m; }); })),
          distributionNotes(mine));
      }) : el("p", { class: "muted", text: "No distribution metrics for this category." }));
  }

  function renderReference(args, query) {
    const d = overview().distribution || { references: {} };
    const file = d.references[args[0]];
    if (!file) return Promise.reject(new Error("no reference set " + args[0] + " in this report"));
    return load(file).then(function (ref) {
      const category = query.get("category") || ref.categories[0] || "all";
      const select = el("select", { id: "category", onchange: function (e) { setQuery("reference/" + encodeURIComponent(ref.name), { category: e.target.value }); renderReference(args, parseHash().query); } },
        ref.categories.map(function (c) { return el("option", { value: c, selected: c === category, text: c === "all" ? "all (overall)" : c }); }));
      const rows = ref.rows.filter(function (r) { return r.category === category; });
      const info = [["source", ref.source], ["images", ref.size], ["with captions", ref.captions], ["fingerprint", ref.fingerprint],
        ["left out (unreadable)", ref.registered ? ref.problems.length : null]];
      fill(app,
        el("h2", { text: "Reference set " + ref.name }),
        ref.registered ? null : el("p", { class: "muted", text: "No longer in data/references/: shown from its rows." }),
        el("table", { id: "reference-info" }, info.filter(function (r) { return r[1] !== null && r[1] !== undefined; }).map(function (r) {
          return el("tr", null, el("th", { text: r[0] }), el("td", { class: typeof r[1] === "number" ? "num" : "", "data-field": r[0], text: fmt(r[1]) }));
        })),
        ref.problems.length ? el("pre", { class: "error", text: ref.problems.join("\n") }) : null,
        el("h3", { text: "Models scored against it (" + ref.models.length + ")" }),
        ref.rows.length ? [el("div", { class: "controls" }, el("label", null, "category ", select)),
          distributionTable(rows, ref.metrics.filter(function (m) { return rows.some(function (r) { return r.metric === m; }); }), { id: "reference-scores" }),
          distributionNotes(rows),
          rows.some(function (r) { return r.current === false; }) ? el("p", { class: "muted", text: "‡ scored against another version of this reference set: rescore to compare." }) : null]
          : el("p", { class: "muted", text: "No model has been scored against it yet." }),
        el("h3", { text: "Images" + (ref.size ? " (the first " + ref.thumbs.length + " of " + ref.size + ")" : "") }),
        el("div", { class: "cards", id: "reference-images" }, ref.thumbs.map(function (t) {
          return el("figure", { class: "reference-image", "data-name": t.name }, thumb(t.thumb, t.thumb, t.name), el("figcaption", { class: "muted", text: t.name }));
        })));
    });
  }

  // --- Compare ------------------------------------------------------------------------------
  const compare = { data: null, current: 0, shown: PAGE_ROWS };

  function compareState() {
    const q = parseHash().query;
    const o = overview();
    const category = q.get("category") || o.categories[0];
    const models = (q.get("models") ? q.get("models").split(",") : o.models.slice(0, 3)).filter(function (m) { return o.models.indexOf(m) >= 0; });
    return { category: category, models: models.slice(0, 6), seed: parseInt(q.get("seed") || "0", 10), filter: q.get("q") || "" };
  }
  function saveCompare(state) {
    setQuery("compare", { category: state.category, models: state.models.join(","), seed: state.seed, q: state.filter });
  }

  function renderCompare() {
    const o = overview();
    const state = compareState();
    if (!state.category) { fill(app, el("p", { text: "No categories yet." })); return; }
    const file = o.files.category[state.category];
    return load(file).then(function (page) {
      return withModelCells(page, file);
    }).then(function (data) {
      compare.data = data;
      compare.shown = PAGE_ROWS;
      compare.current = 0;
      drawCompare(state);
    });
  }

  function drawCompare(state) {
    const o = overview();
    const data = compare.data;
    const seeds = data.seeds.length ? data.seeds : [0];
    if (seeds.indexOf(state.seed) < 0) state.seed = seeds[0];
    const catSelect = el("select", { id: "category", onchange: function (e) { state.category = e.target.value; saveCompare(state); renderCompare(); } },
      o.categories.map(function (c) { return el("option", { value: c, selected: c === state.category, text: c }); }));
    const seedSelect = el("select", { id: "seed", onchange: function (e) { state.seed = parseInt(e.target.value, 10); saveCompare(state); drawCompare(state); } },
      seeds.map(function (s) { return el("option", { value: s, selected: s === state.seed, text: "image " + s }); }));
    const modelBoxes = o.models.map(function (m) {
      const checked = state.models.indexOf(m) >= 0;
      return el("label", null, el("input", {
        type: "checkbox", name: "model", value: m, checked: checked,
        disabled: !checked && state.models.length >= 6,
        onchange: function (e) {
          state.models = e.target.checked ? state.models.concat([m]) : state.models.filter(function (x) { return x !== m; });
          state.models = o.models.filter(function (x) { return state.models.indexOf(x) >= 0; });
          saveCompare(state); drawCompare(state);
        },
      }), m);
    });
    const filter = el("input", { id: "filter", type: "search", placeholder: "filter prompts ( / )", value: state.filter,
      oninput: function (e) { state.filter = e.target.value; saveCompare(state); compare.current = 0; drawRows(state); } });
    fill(app, 
      el("h2", { text: "Compare: same prompt, same seed, different models" }),
      el("div", { class: "controls" }, el("label", null, "category ", catSelect), el("label", null, "seed index ", seedSelect), filter),
      el("div", { class: "controls", id: "models" }, "models (2–6): ", modelBoxes),
      state.models.length < 2 ? el("p", { class: "fail", text: "Choose at least two models." }) : null,
      el("p", { class: "muted", text: "Keys: ↓/j ↑/k move between prompts, ←/→ change the seed index, Enter opens the prompt, / filters." }),
      el("div", { id: "grid" }));
    drawRows(state);
  }

  function visiblePrompts(state) {
    const needle = state.filter.trim().toLowerCase();
    return compare.data.prompts.filter(function (p) { return !needle || (p.text + " " + p.id).toLowerCase().indexOf(needle) >= 0; });
  }

  function compareCell(state, prompt, model) {
    const data = compare.data;
    const images = ((data.cells[model] || {})[prompt.id]) || {};
    const cell = images[String(state.seed)];
    const sets = ((data.sets[model] || {})[prompt.id]) || {};
    const figure = cell
      ? el("a", { href: promptHref(prompt.file, model, state.seed), class: "open" }, thumb(cell[1], cell[2], model + ": " + prompt.text + " (seed " + cell[0] + ")"))
      : el("div", { class: "missing", text: "no image" });
    const values = cell ? el("dl", { class: "values" }, data.image_metrics.filter(function (m) { return m in cell[3]; }).map(function (m) {
      return [el("dt", { text: m }), el("dd", { class: "num", "data-metric": m, "data-value": cell[3][m] === null ? "" : String(cell[3][m]), text: fmt(cell[3][m]) })];
    })) : null;
    const setList = Object.keys(sets).length ? el("dl", { class: "values sets" }, data.set_metrics.filter(function (m) { return m in sets; }).map(function (m) {
      return [el("dt", { text: m }), el("dd", { class: "num", "data-set-metric": m, "data-value": sets[m] === null ? "" : String(sets[m]), text: fmt(sets[m]) })];
    })) : null;
    return el("td", { class: "cell", "data-model": model, "data-seed": cell ? cell[0] : "", "data-index": state.seed }, figure, values, setList);
  }

  function drawRows(state) {
    const grid = document.getElementById("grid");
    const prompts = visiblePrompts(state);
    const shown = prompts.slice(0, compare.shown);
    const rows = shown.map(function (p, i) {
      return el("tr", { "data-prompt": p.id, class: i === compare.current ? "current" : null },
        el("th", null, el("a", { href: promptHref(p.file, state.models[0] || "", state.seed), text: p.text }), el("div", { class: "muted", text: p.id })),
        state.models.map(function (m) { return compareCell(state, p, m); }));
    });
    fill(grid, 
      el("table", { class: "compare" },
        el("thead", null, el("tr", null, el("th", { text: "prompt" }), state.models.map(function (m) { return el("th", null, el("a", { href: modelHref(m), text: m })); }))),
        el("tbody", null, rows)),
      prompts.length > shown.length ? el("button", { id: "more", text: "show " + Math.min(PAGE_ROWS, prompts.length - shown.length) + " more of " + (prompts.length - shown.length),
        onclick: function () { compare.shown += PAGE_ROWS; drawRows(state); } }) : null,
      prompts.length ? null : el("p", { class: "muted", text: "No prompt matches." }));
  }

  function compareKeys(event) {
    if (parseHash().page !== "compare" || !compare.data) return;
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "SELECT")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const state = compareState();
    const rows = document.querySelectorAll("table.compare tbody tr");
    const move = function (delta) {
      if (!rows.length) return;
      compare.current = Math.max(0, Math.min(rows.length - 1, compare.current + delta));
      rows.forEach(function (r, i) { r.classList.toggle("current", i === compare.current); });
      rows[compare.current].scrollIntoView({ block: "nearest" });
    };
    const seeds = compare.data.seeds;
    if (event.key === "ArrowDown" || event.key === "j") { move(1); event.preventDefault(); }
    else if (event.key === "ArrowUp" || event.key === "k") { move(-1); event.preventDefault(); }
    else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      const at = seeds.indexOf(state.seed) + (event.key === "ArrowRight" ? 1 : -1);
      if (at >= 0 && at < seeds.length) { state.seed = seeds[at]; saveCompare(state); drawCompare(state); }  // keeps the current row
      event.preventDefault();
    } else if (event.key === "Enter" && rows.length) {
      const link = rows[compare.current].querySelector("td.cell a.open");
      if (link) location.hash = link.getAttribute("href");
    } else if (event.key === "/") { document.getElementById("filter").focus(); event.preventDefault(); }
  }

  // --- Prompt drill-down ----------------------------------------------------------------------
  function generic(details, skip) {
    const keys = Object.keys(details).filter(function (k) { return (skip || []).indexOf(k) < 0; });
    return keys.map(function (k) {
      let v = details[k];
      if (typeof v === "string" && v.length > 240) v = v.slice(0, 240) + "…";
      return el("div", { class: "detail muted", "data-detail": k }, k + ": ", typeof v === "number" ? fmt(v) : String(v));
    });
  }
  function parseJson(text, fallback) { try { return JSON.parse(text); } catch (e) { return fallback; } }

  // How a stored reason reads, by the format a metric gives each of its extra columns
  // (Metric.extra_columns, in overview().metrics[].columns); undeclared columns show as they are.
  const FORMATS = {
    text: function (c, v) {
      return el("div", { class: "detail", "data-detail": c.name }, c.label + ": " + (v === null || v === undefined || v === "" ? "?" : fmt(v)));
    },
    quote: function (c, v) {
      return el("div", { class: "detail", "data-detail": c.name }, c.label + ": “" + (v || "") + "”");
    },
    reason: function (c, v) {
      const lines = String(v || "").split("\n").filter(Boolean);
      return el("div", { class: "reason " + (lines.length ? "fail" : "ok"), "data-detail": c.name, text: lines.length ? lines.join("\n") : c.empty });
    },
    answers: function (c, v) {
      const answers = parseJson(v || "[]", []);
      return el("table", { class: "answers", "data-detail": c.name },
        el("tr", null, ["question", "answered", "expected", ""].map(function (h) { return el("th", { text: h }); })),
        answers.map(function (a) {
          return el("tr", null, el("td", { text: a.question }), el("td", { text: a.predicted }), el("td", { text: a.answer }),
            el("td", { class: a.correct ? "ok" : "fail", text: a.correct ? "✓" : "✗" }));
        }));
    },
    hidden: function () { return null; },
  };
  function metricInfo(name) {
    return overview().metrics.find(function (m) { return m.name === name; }) || {};
  }
  function reasons(name, details, value) {
    const info = metricInfo(name);
    const columns = info.columns || [];
    return [info.value_label ? el("div", { class: "detail" }, info.value_label + " = " + fmt(value)) : null,
      columns.map(function (c) { return (FORMATS[c.format] || FORMATS.text)(c, details[c.name]); }),
      generic(details, columns.map(function (c) { return c.name; }))];
  }

  function scoreRows(scores) {
    return Object.keys(scores).sort().map(function (name) {
      const s = scores[name];
      return el("tr", { "data-metric": name }, el("th", { text: name }),
        el("td", null, el("span", { class: "num value", "data-metric": name, "data-value": s.value === null ? "" : String(s.value), text: fmt(s.value) }), reasons(name, s.details || {}, s.value)));
    });
  }

  // Each model's cells and drill-down are its own files (data/model/<model>/...), so adding a model
  // writes its files and leaves the others'; a page loads the files of the models it shows.
  function modelFile(model) { return overview().files.model[model]; }

  function withModelCells(page, file) {
    const category = file.slice("category/".length);
    return Promise.all(page.shards.map(function (model) {
      return load(modelFile(model) + "/category/" + category);
    })).then(function (parts) {
      const cells = {}, sets = {};
      page.shards.forEach(function (model, i) {
        if (Object.keys(parts[i].cells).length) cells[model] = parts[i].cells;
        if (Object.keys(parts[i].sets).length) sets[model] = parts[i].sets;
      });
      return Object.assign({}, page, { cells: cells, sets: sets });
    });
  }

  function withModelImages(page, file) {
    const models = overview().models;  // a model without this prompt has no file: that load fails, and is skipped
    return Promise.all(models.map(function (model) {
      return load(modelFile(model) + "/prompt/" + file).catch(function () { return null; });
    })).then(function (parts) {
      const images = [], sets = [];
      parts.forEach(function (part) { if (part) { images.push.apply(images, part.images); sets.push.apply(sets, part.sets); } });
      return Object.assign({}, page, { images: images, sets: sets });
    });
  }

  function renderPrompt(args, query) {
    return load("prompt/" + args[0]).then(function (page) {
      return withModelImages(page, args[0]);
    }).then(function (data) {
      const p = data.prompt;
      const byModel = {};
      data.images.forEach(function (img) { (byModel[img.model] = byModel[img.model] || []).push(img); });
      const wantModel = query.get("model"), wantIndex = query.get("i");
      fill(app, 
        el("h2", { text: "“" + p.text + "”" }),
        el("p", { class: "muted" }, p.id + " · " + p.category + (p.negative_prompt ? " · negative: " + p.negative_prompt : "") + (p.difficulty ? " · " + p.difficulty : "")),
        Object.keys(p.metadata || {}).length ? el("pre", { text: JSON.stringify(p.metadata, null, 1) }) : null,
        Object.keys(byModel).sort().map(function (model) {
          const sets = data.sets.filter(function (s) { return s.model === model; });
          return el("section", { "data-model": model },
            el("h3", null, el("a", { href: modelHref(model), text: model })),
            el("div", { class: "cards" }, byModel[model].map(function (img) {
              const selected = model === wantModel && String(img.index) === wantIndex;
              return el("div", { class: "image-card" + (selected ? " selected" : ""), "data-model": model, "data-index": img.index, "data-seed": img.seed },
                el("a", { href: img.full, target: "_blank", title: "open the full image" }, thumb(img.thumb, img.full, model + " seed " + img.seed)),
                el("div", { class: "muted", text: "image " + img.index + " · seed " + img.seed }),
                el("table", null, scoreRows(img.scores)));
            })),
            sets.length ? el("table", { class: "set-scores" }, sets.map(function (s) {
              return el("tr", { "data-metric": s.metric }, el("th", { text: s.metric + " (all images)" }),
                el("td", null, el("span", { class: "num value", "data-set-metric": s.metric, "data-value": s.value === null ? "" : String(s.value), text: fmt(s.value) }), reasons(s.metric, s.details || {}, s.value)));
            })) : null);
        }));
      const chosen = app.querySelector(".image-card.selected");
      if (chosen) chosen.scrollIntoView({ block: "center" });
    });
  }

  // --- Models ---------------------------------------------------------------------------------
  function renderModels() {
    const o = overview();
    fill(app, el("h2", { text: "Models" }), el("ul", null, o.models.map(function (m) { return el("li", null, el("a", { href: modelHref(m), text: m })); })));
  }

  function renderModel(args) {
    const name = args[0];
    return load(overview().files.model[name]).then(function (m) {
      const info = [["kind", m.kind], ["source", m.source], ["fingerprint", m.fingerprints.join(", ")], ["images", m.images],
        ["devices", m.devices.join(", ")], ["GPU-seconds", m.gpu_seconds.gpu_seconds], ["generation GPU-seconds", m.gpu_seconds.generation_gpu_seconds],
        ["scoring GPU-seconds", m.gpu_seconds.scoring_gpu_seconds], ["GPU-seconds per image", m.gpu_seconds_per_image]];
      fill(app, 
        el("h2", { text: m.model }),
        el("table", { id: "model-info" }, info.filter(function (r) { return r[1] !== undefined; }).map(function (r) {
          return el("tr", null, el("th", { text: r[0] }), el("td", { class: typeof r[1] === "number" ? "num" : "", text: fmt(r[1]) }));
        })),
        el("h3", { text: "Settings" }),
        el("table", { id: "settings" }, Object.keys(m.settings).sort().map(function (k) { return el("tr", null, el("th", { text: k }), el("td", { text: fmt(m.settings[k]) })); })),
        el("h3", { text: "Failures (" + m.failures.length + ")" }),
        m.failures.length ? el("table", { id: "failures" }, m.failures.map(function (f) {
          return el("tr", null, el("td", { text: f.category }), el("td", { text: f.stage }), el("td", { text: (f.prompt_id || "") + (f.image_index !== null && f.image_index !== undefined ? " #" + f.image_index : "") }),
            el("td", { class: "error", text: f.error }));
        })) : el("p", { class: "muted", text: "None." }),
        el("h3", { text: "Worst prompts per metric" }),
        Object.keys(m.worst).map(function (metric) {
          return el("section", { class: "worst", "data-metric": metric }, el("h3", { text: metric }),
            el("div", { class: "cards" }, m.worst[metric].map(function (w) {
              return el("div", { class: "image-card" },
                el("a", { href: "#/prompt-of/" + encodeURIComponent(w.category) + "/" + encodeURIComponent(w.prompt_id) + "?" + new URLSearchParams({ model: m.model, i: w.index === null ? 0 : w.index }) }, thumb(w.thumb, w.full, w.text)),
                el("div", { text: w.text }), el("div", { class: "num", text: metric + " " + fmt(w.value) }));
            })));
        }));
    });
  }

  // A worst-prompt link knows the category and prompt id; the category file knows the prompt's file.
  function renderPromptOf(args, query) {
    return load(overview().files.category[args[0]]).then(function (data) {
      const p = data.prompts.find(function (x) { return x.id === args[1]; });
      if (!p) throw new Error("prompt " + args[1] + " is not in category " + args[0]);
      history.replaceState(null, "", promptHref(p.file, query.get("model"), query.get("i")));
      return renderPrompt([p.file], query);
    });
  }

  // --- Router ---------------------------------------------------------------------------------
  const PAGES = {
    overview: renderOverview, compare: renderCompare, prompt: renderPrompt,
    "prompt-of": renderPromptOf, models: renderModels, model: renderModel, reference: renderReference,
  };

  function route() {
    const where = parseHash();
    document.querySelectorAll("nav a").forEach(function (a) {
      a.classList.toggle("active", a.dataset.nav === where.page || (a.dataset.nav === "models" && where.page === "model"));
    });
    if (!overview()) { fill(app, el("p", { class: "error", text: "data/overview.js is missing: rebuild the report (bench report)." })); return; }
    const page = PAGES[where.page] || renderOverview;
    app.setAttribute("data-page", where.page);
    app.removeAttribute("data-ready");
    Promise.resolve()
      .then(function () { return page(where.args, where.query); })
      .then(function () { app.setAttribute("data-ready", parseHash().page); })
      .catch(function (err) { fill(app, el("p", { class: "error", text: String(err && err.message || err) })); app.setAttribute("data-ready", "error"); });
  }

  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", compareKeys);
  route();
})();
