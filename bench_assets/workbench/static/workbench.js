// The prompt workbench page: everything comes from /api/ (see bench_assets/workbench/app.py).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { suite: null, version: null, prompts: [], editing: undefined, upload: null, token: sessionStorage.getItem("wbToken") };
const STRUCTURED = ["objects", "relations", "text", "questions", "tags"];

async function api(method, path, body, headers) {
  const sent = Object.assign({}, headers || {});
  if (state.token) sent["X-Bench-Token"] = state.token;
  if (body !== undefined && !(body instanceof Blob)) { sent["Content-Type"] = "application/json"; body = JSON.stringify(body); }
  const reply = await fetch(path, { method, headers: sent, body });
  const data = await reply.json().catch(() => ({ error: `HTTP ${reply.status}` }));
  if (reply.status === 401) $("token-form").hidden = false;
  if (!reply.ok) { const err = new Error(data.error || `HTTP ${reply.status}`); err.status = reply.status; throw err; }
  return data;
}

function say(text) { $("message").textContent = text; $("error").hidden = true; }
function fail(err) { $("error").textContent = err.message; $("error").hidden = false; }
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  const { dataset, ...props } = attrs || {};
  Object.assign(node, props);
  Object.assign(node.dataset, dataset || {});
  children.forEach((c) => node.append(c));
  return node;
}
function appliesText(applies) {
  return applies.map((a) => (a.detail ? `${a.metric}: ${a.detail}` : a.metric)).join(" · ");
}

async function start() {
  const session = await api("GET", "/api/session");
  $("suite").replaceChildren(...session.suites.map((s) => el("option", { value: s, textContent: s })));
  $("suite").value = session.suites.includes(session.first) ? session.first : session.suites[0];
  await loadSuite();
}

async function loadSuite() {
  const data = await api("GET", `/api/suites/${encodeURIComponent($("suite").value)}`);
  Object.assign(state, { suite: data.suite, version: data.version, prompts: data.prompts });
  $("version").textContent = `version ${data.version.slice(0, 10)}`;
  $("undo").disabled = data.undo === 0;
  $("undo").textContent = `Undo last save (${data.undo})`;
  fillFilters(data);
  showSince(data.since_last_run);
  render();
}

function fillFilters(data) {
  const keep = (id, values) => {
    const select = $(id), current = select.value;
    select.replaceChildren(select.options[0], ...values.map((v) => el("option", { value: v, textContent: v })));
    select.value = values.includes(current) ? current : "";
  };
  keep("f-category", Object.keys(data.categories));
  keep("f-difficulty", data.difficulties);
  keep("f-tag", [...new Set(data.prompts.flatMap((p) => p.tags))].sort());
  $("e-difficulty").replaceChildren(el("option", { value: "", textContent: "none" }),
    ...data.difficulties.map((d) => el("option", { value: d, textContent: d })));
  $("counts").replaceChildren(...Object.entries(data.categories).map(([c, n]) => el("span", {}, el("b", { textContent: c }), ` ${n}`)));
}

function showSince(since) {
  if (!since) { $("since").textContent = "not the suite the benchmark runs (BENCH_PROMPT_SUITE)"; return; }
  if (!since.recorded) { $("since").textContent = "no benchmark run recorded yet"; return; }
  const parts = ["added", "removed", "edited"].map((k) => `${since[k].length} ${k}` + (since[k].length ? ` (${since[k].slice(0, 8).join(", ")})` : ""));
  $("since").textContent = `since the last benchmark run: ${parts.join(", ")}`;
}

function matches(p) {
  const q = $("search").value.trim().toLowerCase(), m = p.metadata || {};
  return (!q || `${p.id} ${p.prompt} ${p.tags.join(" ")}`.toLowerCase().includes(q))
    && (!$("f-category").value || p.category === $("f-category").value)
    && (!$("f-difficulty").value || p.difficulty === $("f-difficulty").value)
    && (!$("f-tag").value || p.tags.includes($("f-tag").value))
    && (!$("f-objects").checked || (m.objects || []).length > 0)
    && (!$("f-questions").checked || (m.questions || []).length > 0)
    && (!$("f-text").checked || p.applies.some((a) => a.metric === "text_rendering"));
}

function render() {
  const shown = state.prompts.filter(matches);
  $("shown").textContent = `${shown.length} of ${state.prompts.length} prompts`;
  $("prompts").tBodies[0].replaceChildren(...shown.map((p) => {
    const box = el("input", { type: "checkbox", className: "pick", value: p.id });
    box.addEventListener("click", (e) => e.stopPropagation());
    const row = el("tr", { dataset: { id: p.id } }, el("td", {}, box), el("td", { textContent: p.id }),
      el("td", { textContent: p.category }), el("td", { textContent: p.difficulty || "" }),
      el("td", { textContent: p.prompt }), el("td", { textContent: p.source || "own" }),
      el("td", { className: "metrics", textContent: appliesText(p.applies) }));
    row.addEventListener("click", () => openEditor(p, p.id));
    return row;
  }));
}

// --- the editor --------------------------------------------------------------------------------------------
function rowOf(container, fields, values) {
  const row = el("div", { className: "row" });
  fields.forEach(([key, placeholder, small]) => row.append(el("input", { className: `${key}${small ? " small" : ""}`, placeholder, value: values[key] ?? "" })));
  const remove = el("button", { type: "button", textContent: "×", title: "remove" });
  remove.addEventListener("click", () => { row.remove(); checkApplies(); });
  row.append(remove);
  $(container).append(row);
}
const OBJECT = [["name", "name"], ["count", "count", true], ["colour", "colour"]];
const RELATION = [["subject", "subject"], ["relation", "relation (left of, above...)"], ["object", "object"]];
const QUESTION = [["id", "id", true], ["question", "question"], ["parents", "parents (ids)"]];

// upload: the stashed image's id when the prompt was proposed for an upload (it may be kept as a reference image)
function openEditor(p, originalId, upload) {
  state.editing = originalId;
  state.upload = upload || null;
  $("keep").hidden = !state.upload; $("keep-image").checked = false;
  $("e-reference").hidden = !(p.metadata || {}).reference_image;
  $("e-reference").textContent = `reference image: data/references/${(p.metadata || {}).reference_image || ""}`;
  const m = Object.assign({}, p.metadata || {});
  $("editor-title").textContent = originalId ? `Edit ${originalId}` : "New prompt";
  $("e-id").value = p.id || ""; $("e-category").value = p.category || ""; $("e-prompt").value = p.prompt || "";
  $("e-difficulty").value = p.difficulty || ""; $("e-negative").value = p.negative_prompt || "";
  $("e-tags").value = [].concat(m.tags || []).join(", ");
  $("e-text").value = Array.isArray(m.text) ? m.text.join(" ") : (m.text || "");
  ["e-objects", "e-relations", "e-questions"].forEach((id) => $(id).replaceChildren());
  (m.objects || []).forEach((o) => rowOf("e-objects", OBJECT, { ...o, colour: o.colour ?? o.color }));
  (m.relations || []).forEach((r) => rowOf("e-relations", RELATION, r));
  (m.questions || []).forEach((q) => rowOf("e-questions", QUESTION, { ...q, parents: (q.parents || []).join(", ") }));
  const other = Object.fromEntries(Object.entries(m).filter(([k]) => !STRUCTURED.includes(k)));
  $("e-other").value = Object.keys(other).length ? JSON.stringify(other) : "";
  $("editor").hidden = false;
  checkApplies();
}

function rows(container, build) {
  return [...$(container).querySelectorAll(".row")].map((row) => {
    const v = Object.fromEntries([...row.querySelectorAll("input")].map((i) => [i.className.split(" ")[0], i.value.trim()]));
    return build(v);
  });
}
const asNumber = (text) => (/^-?\d+$/.test(text) ? Number(text) : text);
const ids = (text) => text.split(",").map((s) => s.trim()).filter(Boolean).map(asNumber);

function editedPrompt() {
  let metadata = {};
  if ($("e-other").value.trim()) metadata = JSON.parse($("e-other").value);
  const objects = rows("e-objects", (v) => Object.assign({ name: v.name, count: v.count === "" ? 1 : asNumber(v.count) }, v.colour ? { colour: v.colour } : {}));
  const relations = rows("e-relations", (v) => v);
  const questions = rows("e-questions", (v) => ({ id: asNumber(v.id), question: v.question, parents: ids(v.parents), choices: ["Yes", "No"], answer: "Yes" }));
  const tags = $("e-tags").value.split(",").map((s) => s.trim()).filter(Boolean);
  Object.assign(metadata, objects.length ? { objects } : {}, relations.length ? { relations } : {},
    questions.length ? { questions } : {}, tags.length ? { tags } : {}, $("e-text").value.trim() ? { text: $("e-text").value.trim() } : {});
  return { id: $("e-id").value.trim(), category: $("e-category").value.trim(), prompt: $("e-prompt").value,
    negative_prompt: $("e-negative").value.trim() || null, difficulty: $("e-difficulty").value || null, metadata };
}

let appliesTimer = null;
function checkApplies() {
  clearTimeout(appliesTimer);
  appliesTimer = setTimeout(async () => {
    try {
      const data = await api("POST", "/api/applies", { prompt: editedPrompt() });
      $("applies").textContent = `metrics that apply: ${appliesText(data.applies) || "none"}`;
      $("warnings").replaceChildren(...data.warnings.map((w) => el("li", { textContent: w })));
    } catch (err) {
      $("applies").textContent = `not valid yet: ${err.message}`;
    }
  }, 150);
}

async function saveEdits(edits, what) {
  try {
    const data = await api("POST", `/api/suites/${encodeURIComponent(state.suite)}/edit`, { version: state.version, edits });
    await loadSuite();
    say(`${what}; ${rerunText(data)}`);
    return true;
  } catch (err) {
    if (err.status === 409) { await loadSuite(); fail(new Error(`${err.message} (the page has reloaded the suite)`)); return false; }
    fail(err);
    return false;
  }
}

function rerunText(data) {
  const rerun = data.rerun || [];
  if (!rerun.length) return "no partition to re-run";
  const stale = rerun.filter((r) => r.state === "stale").length;
  return `${rerun.length} partition(s) to re-run (${stale} stale): ` + rerun.map((r) => `${r.model}/${r.category} ${r.state}`).join(", ");
}

function picked() { return [...document.querySelectorAll("input.pick:checked")].map((b) => b.value); }

function wire() {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault(); state.token = $("token").value; sessionStorage.setItem("wbToken", state.token);
    $("token-form").hidden = true; start().catch(fail);
  });
  ["search", "f-category", "f-difficulty", "f-tag", "f-objects", "f-questions", "f-text"].forEach((id) => $(id).addEventListener("input", render));
  $("suite").addEventListener("change", () => loadSuite().catch(fail));
  $("editor").addEventListener("input", checkApplies);
  $("add-object").addEventListener("click", () => rowOf("e-objects", OBJECT, { count: 1 }));
  $("add-relation").addEventListener("click", () => rowOf("e-relations", RELATION, {}));
  $("add-question").addEventListener("click", () => rowOf("e-questions", QUESTION, {}));
  $("close").addEventListener("click", () => { $("editor").hidden = true; });
  $("new").addEventListener("click", () => openEditor({ category: $("f-category").value || "custom" }, null));
  $("duplicate").addEventListener("click", () => openEditor({ ...editedPrompt(), id: `${$("e-id").value}-copy` }, null));
  $("editor").addEventListener("submit", async (e) => {
    e.preventDefault();
    let prompt;
    try { prompt = editedPrompt(); } catch (err) { fail(new Error(`other metadata: ${err.message}`)); return; }
    const edit = { op: "put", id: state.editing, prompt };
    if (state.upload && $("keep-image").checked) edit.keep_image = { upload: state.upload, reference_set: $("keep-set").value.trim() || "workbench" };
    const what = edit.keep_image ? `saved ${prompt.id}, its image kept in data/references/${edit.keep_image.reference_set}/` : `saved ${prompt.id}`;
    if (await saveEdits([edit], what)) $("editor").hidden = true;
  });
  $("delete").addEventListener("click", () => picked().length && saveEdits([{ op: "delete", ids: picked() }], `deleted ${picked().length}`));
  $("move").addEventListener("click", () => picked().length && saveEdits([{ op: "move", ids: picked(), category: $("move-category").value.trim() }], "moved"));
  $("undo").addEventListener("click", undo);
  $("spec").addEventListener("click", createSpec);
  $("file").addEventListener("change", () => $("file").files[0] && upload($("file").files[0]));
  $("drop").addEventListener("dragover", (e) => { e.preventDefault(); $("drop").classList.add("over"); });
  $("drop").addEventListener("dragleave", () => $("drop").classList.remove("over"));
  $("drop").addEventListener("drop", (e) => { e.preventDefault(); $("drop").classList.remove("over"); if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]); });
}

async function undo() {
  try {
    const data = await api("POST", `/api/suites/${encodeURIComponent(state.suite)}/undo`, { version: state.version });
    await loadSuite();
    say(`undone; ${rerunText(data)}`);
  } catch (err) {
    if (err.status === 409) await loadSuite();
    fail(err);
  }
}

async function createSpec() {
  const body = { name: $("spec-name").value.trim(), include: [state.suite] };
  if ($("f-category").value) body.categories = [$("f-category").value];
  if ($("f-difficulty").value) body.difficulty = [$("f-difficulty").value];
  if ($("f-tag").value) body.tags = [$("f-tag").value];
  try {
    const data = await api("POST", "/api/specs", body);
    say(`wrote ${data.spec} (category, difficulty and tag filters; BENCH_PROMPT_SUITE=${data.name} runs it)`);
  } catch (err) { fail(err); }
}

async function upload(file) {
  $("preview").src = URL.createObjectURL(file); $("preview").hidden = false;
  $("proposal").textContent = "proposing…";
  try {
    const data = await api("POST", "/api/propose", file, { "X-Filename": encodeURIComponent(file.name) });
    $("proposal").textContent = `proposed: “${data.prompt}” (text from the ${data.text_source}; caption: “${data.caption}”)`;
    const stem = file.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "") || "image";
    openEditor({ id: `upload-${stem}`, category: $("f-category").value || "custom", prompt: data.prompt, metadata: data.metadata }, null, data.upload);
  } catch (err) {
    $("proposal").textContent = "";
    fail(err);
  }
}

wire();
start().catch(fail);
