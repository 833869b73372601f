"use strict";
// The trace viewer: renders the JSON document embedded in this page (evals/viewer/data.py). No network:
// every image is a data URI and nothing is fetched.
(function () {
  const DATA = JSON.parse(document.getElementById("xthink-data").textContent);
  const COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080", "#f032e6", "#9a6324"];
  const CHUNK = 100;
  const columns = [];
  const state = { rows: [], shown: 0, selected: -1, open: -1 };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const svgEl = (tag, attrs) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  };
  const fmt = (v) => (v === null || v === undefined ? "" : typeof v === "number" && !Number.isInteger(v) ? v.toFixed(1) : String(v));
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const label = (col) => (DATA.mode === "compare" ? col.replace("|", " · ") : col.split("|")[1]);

  function init() {
    document.title = "extract-think · " + DATA.title;
    for (const item of DATA.items) for (const key of Object.keys(item.results)) if (!columns.includes(key)) columns.push(key);
    const order = (k) => [DATA.runs.indexOf(k.split("|")[0]), DATA.regimes.indexOf(k.split("|")[1])];
    columns.sort((a, b) => { const x = order(a), y = order(b); return x[0] - y[0] || x[1] - y[1]; });
    const header = document.querySelector("header");
    header.append(el("h1", { text: DATA.title || "trace" }),
      el("span", { class: "meta", text: DATA.mode === "answer" ? "one answer" : DATA.mode === "thread" ? plural(DATA.items.length, "turn") :
        `${DATA.items.length} items · ${columns.length} ${DATA.mode === "compare" ? "run/regime columns" : "regimes"}` }));
    if (DATA.mode === "answer" || DATA.mode === "thread") {
      // A trace may name image files anywhere: say which files this page holds the pixels of.
      const files = DATA.embedded || [];
      header.append(el("p", { class: "small embedded", text: files.length ? "Images embedded from: " + files.join(", ")
        : "No image files embedded." }));
      document.body.classList.add("answer");
      if (DATA.mode === "thread") renderThread(); else openItem(0);
      return;
    }
    const tabs = el("nav", { class: "tabs" });
    for (const name of ["Summary", "Items"]) {
      tabs.append(el("button", { id: "tab-" + name.toLowerCase(), text: name, onclick: () => showTab(name) }));
    }
    header.append(tabs);
    renderSummary();
    renderItems();
    showTab("Items");
    document.addEventListener("keydown", onKey);
  }

  function showTab(name) {
    for (const n of ["summary", "items"]) {
      document.getElementById(n).style.display = n === name.toLowerCase() ? "" : "none";
      document.getElementById("tab-" + n).classList.toggle("active", n === name.toLowerCase());
    }
    if (name !== "Items") closeItem();
  }

  // ---- summary ----------------------------------------------------------------------------------------
  function table(rows, cols) {
    if (!rows || !rows.length) return null;
    cols = cols || Array.from(new Set(rows.flatMap((r) => Object.keys(r))));
    return el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, cols.map((c) => el("th", { text: c })))),
      el("tbody", {}, rows.map((r) => el("tr", {}, cols.map((c) =>
        el("td", { class: typeof r[c] === "number" ? "num" : null, text: fmt(r[c]) })))))));
  }
  function renderSummary() {
    const s = DATA.summary || {};
    const root = document.getElementById("summary");
    const block = (title, node, note) => node && root.append(el("section", { class: "card" }, el("h2", { text: title }),
      note ? el("p", { class: "small", text: note }) : null, node));
    for (const note of s.notes || []) root.append(el("p", { class: "small", text: "Note: " + note }));
    block("Accuracy (%), the paper's table", table(s.table));
    block("High-resolution benchmarks (%)", table(s.high_res), "HR-Bench: accuracy within each option cycle, averaged over the cycles.");
    block("Cost per sample", table(s.cost));
    block("Iterative vs single-pass on the same items", table(s.paired),
      "won/lost: items only iterative / only the baseline got right; p: exact McNemar; diff and CI: bootstrap, accuracy points.");
    block("Other VMCBench sources", table(s.other_sources));
    if (s.plots && s.plots.length) block("Plots", el("div", { class: "plots" }, s.plots.map((src) => el("img", { src, alt: "plot" }))));
  }

  // ---- items table and filters --------------------------------------------------------------------------
  function options(values, all) {
    return [el("option", { value: "", text: all }), ...values.map((v) => el("option", { value: v, text: v }))];
  }
  function renderItems() {
    const root = document.getElementById("items");
    const uniq = (f) => Array.from(new Set(DATA.items.map(f).filter(Boolean))).sort();
    const colOptions = (id) => el("select", { id, onchange: applyFilters }, options(columns, "any column").map((o) => {
      if (o.value) o.textContent = label(o.value); return o; }));
    const filters = el("div", { class: "filters" },
      el("label", {}, "benchmark", el("select", { id: "f-bench", onchange: applyFilters }, options(uniq((i) => i.benchmark), "all"))),
      el("label", {}, "category", el("select", { id: "f-cat", onchange: applyFilters }, options(uniq((i) => i.category), "all"))),
      el("label", {}, colOptions("f-a"),
        el("select", { id: "f-rel", onchange: applyFilters },
          el("option", { value: "rw", text: "right, and" }), el("option", { value: "wr", text: "wrong, and" })),
        colOptions("f-b"), el("span", { id: "f-b-rel", text: "wrong" })),
      el("label", {}, el("input", { type: "checkbox", id: "f-toolerr", onchange: applyFilters }), "tool errors"),
      el("label", {}, el("input", { type: "checkbox", id: "f-budget", onchange: applyFilters }), "budget spent"),
      el("label", {}, el("input", { type: "checkbox", id: "f-failed", onchange: applyFilters }), "failed samples"),
      el("input", { type: "search", id: "f-text", placeholder: "search question, id, output…", oninput: applyFilters }),
      el("span", { class: "count", id: "f-count" }));
    const head = el("tr", {}, el("th", { text: "#" }), el("th", { text: "item" }), el("th", { text: "gold" }),
      columns.map((c) => el("th", { text: label(c) })));
    const card = el("section", { class: "card" }, filters,
      el("div", { class: "scroll" }, el("table", { id: "items-table" }, el("thead", {}, head), el("tbody", { id: "rows" }))),
      el("div", { id: "sentinel", class: "small", text: "" }));
    root.append(card, el("section", { id: "detail", class: "card" }));
    new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) more(); })
      .observe(document.getElementById("sentinel"));
    applyFilters();
  }

  function matches(item, f) {
    if (f.bench && item.benchmark !== f.bench) return false;
    if (f.cat && item.category !== f.cat) return false;
    const res = Object.values(item.results);
    if (f.a || f.b) {
      const a = f.a ? item.results[f.a] : null, b = f.b ? item.results[f.b] : null;
      const want = f.rel === "rw" ? [true, false] : [false, true];
      if (f.a && (!a || a.correct !== want[0])) return false;
      if (f.b && (!b || b.correct !== want[1])) return false;
    }
    if (f.toolerr && !res.some((r) => r.tool_errors > 0)) return false;
    if (f.budget && !res.some((r) => r.budget_spent)) return false;
    if (f.failed && !res.some((r) => r.status !== "ok")) return false;
    if (f.text) {
      const hay = [item.sample_id, item.question, item.category, ...item.options,
        ...res.map((r) => (r.pred || "") + " " + (r.error || ""))].join(" ").toLowerCase();
      if (!hay.includes(f.text)) return false;
    }
    return true;
  }

  function applyFilters() {
    const v = (id) => document.getElementById(id);
    const f = { bench: v("f-bench").value, cat: v("f-cat").value, a: v("f-a").value, b: v("f-b").value,
      rel: v("f-rel").value, toolerr: v("f-toolerr").checked, budget: v("f-budget").checked,
      failed: v("f-failed").checked, text: v("f-text").value.trim().toLowerCase() };
    v("f-b-rel").textContent = f.rel === "rw" ? "wrong" : "right";
    state.rows = DATA.items.map((item, i) => i).filter((i) => matches(DATA.items[i], f));
    state.shown = 0; state.selected = -1;
    v("rows").replaceChildren();
    v("f-count").textContent = `${state.rows.length} of ${DATA.items.length} items`;
    more();
  }

  function more() {
    const body = document.getElementById("rows");
    const end = Math.min(state.shown + CHUNK, state.rows.length);
    for (let n = state.shown; n < end; n++) body.append(row(n));
    state.shown = end;
    document.getElementById("sentinel").textContent = state.shown < state.rows.length ? "loading more…" : "";
  }

  function cell(r) {
    if (!r) return el("td", { class: "small", text: "—" });
    const mark = r.status !== "ok" ? el("span", { class: "mark err", title: r.error || "", text: "!" })
      : r.correct === null ? el("span", { class: "mark", text: "·" })
      : el("span", { class: "mark " + (r.correct ? "ok" : "bad"), text: r.correct ? "✓" : "✗" });
    return el("td", { class: "res" }, mark, " ", r.pred || (r.status !== "ok" ? "failed" : "–"),
      el("span", { class: "small", text: `${plural(r.calls, "call")} · ${r.tokens} tok · ${fmt(r.seconds)}s` }),
      r.tool_errors ? el("span", { class: "pill bad", text: plural(r.tool_errors, "bad call") }) : null,
      r.budget_spent ? el("span", { class: "pill warn", text: "budget spent" }) : null);
  }

  function row(n) {
    const item = DATA.items[state.rows[n]];
    return el("tr", { "data-n": n, "data-key": item.key, onclick: () => { select(n); openItem(state.rows[n]); } },
      el("td", { class: "num small", text: n + 1 }),
      el("td", {}, el("div", { text: item.sample_id }), el("div", { class: "small", text: `${item.benchmark} · ${item.category}` })),
      el("td", { text: item.gold || "" }),
      columns.map((c) => cell(item.results[c])));
  }

  function select(n) {
    if (n < 0 || n >= state.rows.length) return;
    while (n >= state.shown) more();
    const body = document.getElementById("rows");
    body.querySelectorAll("tr.selected").forEach((tr) => tr.classList.remove("selected"));
    const tr = body.querySelector(`tr[data-n="${n}"]`);
    tr.classList.add("selected");
    tr.scrollIntoView({ block: "nearest" });
    state.selected = n;
  }

  function onKey(event) {
    if (event.target.matches("input, select, textarea")) return;
    const detailOpen = state.open >= 0;
    if (["ArrowDown", "j"].includes(event.key)) { select(state.selected + 1); if (detailOpen) openItem(state.rows[state.selected]); }
    else if (["ArrowUp", "k"].includes(event.key)) { select(Math.max(state.selected - 1, 0)); if (detailOpen) openItem(state.rows[state.selected]); }
    else if (event.key === "Enter" && state.selected >= 0) openItem(state.rows[state.selected]);
    else if (event.key === "Escape") closeItem();
    else return;
    event.preventDefault();
  }

  // ---- a conversation: one card per turn, its question, reply and trace -----------------------------------
  function renderThread() {
    const root = document.getElementById("items");
    for (const note of DATA.notes || []) root.append(el("p", { class: "small", text: "Note: " + note }));
    if (!DATA.items.length) root.append(el("p", { class: "empty", text: "This thread has no turns yet." }));
    DATA.items.forEach((item, index) => {
      const status = item.status === "error" ? el("span", { class: "pill bad", text: "input refused" })
        : item.status === "unfinished" ? el("span", { class: "pill warn", text: "unfinished (paused or stopped)" }) : null;
      const card = el("section", { class: "card turn", "data-turn": index + 1 },
        el("div", { class: "detail-head" }, el("h2", { text: `Turn ${index + 1}` }), status),
        el("div", { class: "question", text: item.question || "(no question text)" }),
        item.reply ? el("div", { class: "reply" }, el("span", { class: "small", text: "assistant: " }), el("pre", { text: item.reply })) : null,
        item.error ? el("p", { class: "refused", text: "error: " + item.error }) : null);
      const cols = columns.filter((c) => item.results[c]);
      if (cols.length) card.append(el("div", { class: "columns" }, cols.map((c) => traceColumn(item, c, item.results[c]))));
      root.append(card);
    });
  }

  // ---- one item: every column's trace side by side ------------------------------------------------------
  function closeItem() {
    const detail = document.getElementById("detail");
    if (detail) { detail.classList.remove("open"); detail.replaceChildren(); }
    state.open = -1;
  }

  function openItem(index) {
    const item = DATA.items[index];
    let detail = document.getElementById("detail");
    if (!detail) { detail = el("section", { id: "detail", class: "card" }); document.querySelector("main").append(detail); }
    state.open = index;
    const letters = item.options.map((_, i) => String.fromCharCode(65 + i));
    const head = el("div", { class: "detail-head" }, el("h2", { text: DATA.mode === "answer" ? "Answer" : `${item.benchmark} · ${item.sample_id}` }),
      item.category ? el("span", { class: "pill", text: item.category }) : null,
      DATA.mode === "answer" ? null : el("span", { class: "nav" },
        el("button", { text: "↑ previous", onclick: () => { select(state.selected - 1); openItem(state.rows[state.selected]); } }),
        el("button", { text: "↓ next", onclick: () => { select(state.selected + 1); openItem(state.rows[state.selected]); } }),
        el("button", { text: "close (Esc)", onclick: closeItem })));
    const question = el("div", {}, el("div", { class: "question", text: item.question }),
      item.options.length ? el("ul", { class: "options" }, item.options.map((o, i) =>
        el("li", { class: item.gold === letters[i] ? "gold" : null, text: `${letters[i]}. ${o}` + (item.gold === letters[i] ? "  (gold)" : "") }))) : null);
    const cols = columns.filter((c) => item.results[c]);
    const grid = el("div", { class: "columns" }, cols.map((c) => traceColumn(item, c, item.results[c])));
    detail.replaceChildren(head, question, grid);
    detail.classList.add("open");
    detail.scrollTop = 0;
  }

  function traceColumn(item, col, r) {
    const trace = r.trace ? DATA.traces[r.trace] : null;
    const verdict = r.status !== "ok" ? el("span", { class: "pill bad", text: "failed" })
      : r.correct === null ? null : el("span", { class: "pill " + (r.correct ? "" : "bad"), text: r.correct ? "right" : "wrong" });
    const head = el("div", { class: "trace-head" }, el("b", { text: label(col) || (trace && trace.mode) || "" }),
      el("span", { text: "answer: " + (r.pred || (trace && trace.answer) || "none") }), verdict,
      el("span", { class: "small", text: `${plural(r.calls, "extraction call")} · ${r.tokens} tokens · ${fmt(r.seconds)}s` }),
      r.budget_spent ? el("span", { class: "pill warn", text: "budget spent" }) : null);
    const column = el("div", { class: "trace", "data-col": col }, head);
    if (r.error) column.append(el("p", { class: "refused", text: "error: " + r.error }));
    if (!trace) { column.append(el("p", { class: "empty", text: "no trace for this record" })); return column; }
    const numbered = trace.steps.map((s, i) => ({ step: s, n: i + 1 }));
    const boxes = numbered.filter(({ step }) => step.kind === "extract" && !step.error && (step.source_region || step.region)
      && step.purpose !== "direct");
    column.append(imagePanel(item, boxes), timeline(numbered, boxes));
    return column;
  }

  function imagePanel(item, boxes) {
    const panel = el("div", { class: "imagepanel" });
    for (const image of item.images) {
      const src = image.src ? DATA.images[image.src] : null;
      if (!src) {
        panel.append(el("div", { class: "small not-embedded", text: `${image.id}: image not embedded (${image.not_embedded || "no file"})` }));
        continue;
      }
      const svg = svgEl("svg", { viewBox: "0 0 1 1", preserveAspectRatio: "none" });
      const mine = boxes.filter(({ step }) => (step.source_image || step.image_id || item.images[0].id) === image.id);
      mine.forEach(({ step, n }, k) => {
        const [x0, y0, x1, y1] = step.source_region || step.region;
        const colour = COLOURS[boxes.indexOf(mine[k]) % COLOURS.length];
        svg.append(svgEl("rect", { class: "box", "data-step": n, x: x0, y: y0, width: Math.max(x1 - x0, 0.002),
          height: Math.max(y1 - y0, 0.002), fill: "none", stroke: colour, "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
      });
      const img = el("img", { src, alt: image.id });
      const figure = el("div", { class: "figure" }, img, svg);
      mine.forEach(({ step, n }, k) => {
        const [x0, y0] = step.source_region || step.region;
        const tag = el("span", { class: "boxlabel", text: String(n) });
        tag.style.left = `${(x0 * 100).toFixed(2)}%`; tag.style.top = `${(y0 * 100).toFixed(2)}%`;
        tag.style.background = COLOURS[boxes.indexOf(mine[k]) % COLOURS.length];
        figure.append(tag);
      });
      panel.append(el("div", {}, figure, el("div", { class: "small", text: `${image.id} · ${image.width}×${image.height}` })));
      if (mine.length) {
        const crops = el("div", { class: "crops" });
        img.addEventListener("load", () => mine.forEach(({ step, n }, k) => crops.append(cropThumb(img, step, n, COLOURS[boxes.indexOf(mine[k]) % COLOURS.length]))));
        if (img.complete && img.naturalWidth) img.dispatchEvent(new Event("load"));
        panel.append(crops);
      }
    }
    return panel;
  }

  function cropThumb(img, step, n, colour) {
    const [x0, y0, x1, y1] = step.source_region || step.region;
    const sw = Math.max(1, (x1 - x0) * img.naturalWidth), sh = Math.max(1, (y1 - y0) * img.naturalHeight);
    const scale = Math.min(120 / sw, 90 / sh, 4);
    const canvas = el("canvas", { width: Math.max(8, Math.round(sw * scale)), height: Math.max(8, Math.round(sh * scale)) });
    canvas.style.borderColor = colour;
    canvas.getContext("2d").drawImage(img, x0 * img.naturalWidth, y0 * img.naturalHeight, sw, sh, 0, 0, canvas.width, canvas.height);
    return el("figure", {}, canvas, el("figcaption", { text: `${n}${step.crop_id ? " · " + step.crop_id : ""}` }));
  }

  function timeline(numbered, boxes) {
    const list = el("ol", { class: "timeline" });
    for (const { step, n } of numbered) list.append(step.kind === "reason" ? reasonStep(step, n) : extractStep(step, n, boxes));
    return list;
  }

  function reasonStep(s, n) {
    const visible = s.output_tokens - s.thinking_tokens;
    return el("li", { class: "reason" },
      el("div", { class: "step-head" }, el("span", { class: "n", text: n }), el("span", { class: "kind", text: "reasoner" }),
        el("span", { text: s.purpose }), el("span", { text: `${s.prompt_tokens} prompt (${s.cached_tokens} cached) · ${s.thinking_tokens} thinking + ${visible} visible tokens · ${fmt(s.seconds)}s · ${s.finish_reason}` })),
      s.thinking ? el("details", {}, el("summary", { text: `thinking (${s.thinking_tokens} tokens)` }), el("pre", { text: s.thinking })) : null,
      s.text ? el("pre", { text: s.text }) : null,
      s.tool_calls.map((c) => el("div", { class: "call", text: `→ ${c.name}(${JSON.stringify(c.arguments)})` })),
      s.tool_errors.map((e) => el("div", { class: "refused", text: "malformed call refused: " + e })));
  }

  function extractStep(s, n, boxes) {
    const k = boxes.findIndex((b) => b.n === n);
    const swatch = k >= 0 ? el("span", { class: "swatch", style: `background:${COLOURS[k % COLOURS.length]}` }) : null;
    const where = [s.image_id, s.region ? `[${s.region.map((v) => v.toFixed(3)).join(", ")}]` : null,
      s.source_region && s.image_id !== s.source_image ? `= ${s.source_image} [${s.source_region.map((v) => v.toFixed(3)).join(", ")}]` : null,
      s.crop_id ? `→ ${s.crop_id}` : null].filter(Boolean).join(" ");
    return el("li", { class: "extract" + (s.error ? " error" : "") },
      el("div", { class: "step-head" }, swatch, el("span", { class: "n", text: n }), el("span", { class: "kind", text: "perceiver" }),
        el("span", { text: s.purpose }), el("span", { text: where }),
        s.error ? null : el("span", { text: `${s.prompt_tokens} prompt (${s.cached_tokens} cached) · ${s.output_tokens} tokens · ${fmt(s.seconds)}s` })),
      s.request ? el("div", {}, el("span", { class: "small", text: "request: " }), s.request) : null,
      (s.repairs || []).length ? el("div", { class: "small", text: "region repaired: " + s.repairs.join("; ") }) : null,
      s.error ? el("div", { class: "refused", text: "refused: " + s.error }) : null,
      s.instruction ? el("details", {}, el("summary", { text: "instruction" }), el("pre", { text: s.instruction })) : null,
      s.output ? el("pre", { text: s.output }) : null);
  }

  init();
})();
