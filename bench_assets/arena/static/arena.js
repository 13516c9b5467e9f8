// The arena page: join, show a pair, vote (buttons or keys 1-4), reveal, next.
// It only ever sees what the server sends: a prompt, two opaque image URLs and
// a pair token; model names arrive in the vote's answer.
"use strict";

const REVEAL_MS = 1500;  // how long the reveal stays before the next pair (Enter skips)
// ?advance=manual keeps the reveal until Enter / Next (for voters who want to look longer).
const AUTO_ADVANCE = new URLSearchParams(location.search).get("advance") !== "manual";
const $ = (id) => document.getElementById(id);
let current = null;      // the pair on screen: {token, prompt, left, right}
let state = "idle";      // loading | ready | voting | reveal
let revealTimer = null;
let votes = 0;

async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : {"Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setState(next) {
  state = next;
  $("pair").dataset.state = next;
  for (const button of document.querySelectorAll("#choices button[data-choice]")) {
    button.disabled = next !== "ready";
  }
  $("next").hidden = next !== "reveal";
}

function loadImage(img, url) {
  return new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error("an image failed to load"));
    img.src = url;
  });
}

async function nextPair() {
  clearTimeout(revealTimer);
  setState("loading");
  for (const side of ["left", "right"]) {
    $(side).classList.remove("chosen");
    $(side).querySelector(".reveal").textContent = "";
  }
  try {
    current = await api("/api/pair", {});
    $("prompt").textContent = current.prompt;
    await Promise.all([loadImage($("left").querySelector("img"), current.left),
                       loadImage($("right").querySelector("img"), current.right)]);
    showError("");
    setState("ready");
  } catch (error) {
    showError(`${error.message}; press Enter to try again`);
    setState("reveal");
  }
}

async function vote(choice) {
  if (state !== "ready") return;
  setState("voting");
  try {
    const result = await api("/api/vote", {token: current.token, choice: choice});
    $("left").querySelector(".reveal").textContent = result.left.model;
    $("right").querySelector(".reveal").textContent = result.right.model;
    if (choice === "left" || choice === "right") $(choice).classList.add("chosen");
    votes += 1;
    $("count").textContent = `${votes} vote${votes === 1 ? "" : "s"} this session`;
    setState("reveal");
    if (AUTO_ADVANCE) revealTimer = setTimeout(nextPair, REVEAL_MS);
  } catch (error) {
    showError(`${error.message}; press Enter for a new pair`);
    setState("reveal");
  }
}

function startArena(voter) {
  $("join").hidden = true;
  $("arena").hidden = false;
  $("whoami").textContent = `voting as ${voter}`;
  nextPair();
}

const KEYS = {"1": "left", "2": "right", "3": "tie", "4": "both_bad"};
document.addEventListener("keydown", (event) => {
  if ($("arena").hidden || event.target.tagName === "INPUT") return;
  if (KEYS[event.key]) vote(KEYS[event.key]);
  else if ((event.key === "Enter" || event.key === " ") && state === "reveal") {
    event.preventDefault();
    nextPair();
  }
});

document.addEventListener("DOMContentLoaded", async () => {
  for (const button of document.querySelectorAll("#choices button[data-choice]")) {
    button.addEventListener("click", () => vote(button.dataset.choice));
  }
  $("next").addEventListener("click", nextPair);
  $("join").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const me = await api("/api/join", {name: $("name").value, token: $("token").value});
      showError("");
      startArena(me.voter);
    } catch (error) {
      showError(error.message);
    }
  });
  const me = await api("/api/session");
  $("token-label").hidden = !me.token_required;
  if (me.voter) startArena(me.voter);
  else $("join").hidden = false;
});
