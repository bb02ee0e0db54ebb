// avemo serve: upload a video, watch its emotions over time as the analysis runs. Plain JavaScript, nothing
// fetched from outside this server. The HTTP interface is described in avemo/web/app.py and the README.
"use strict";

const QUERY = document.querySelector('meta[name="avemo-query"]').content; // "" or "?token=..."
const $ = (id) => document.getElementById(id);
const api = (path) => path + QUERY;
const state = { classes: [], colours: {}, id: null, record: null, windows: [], source: null, hover: null };

function fmtTime(s) {
  if (s == null || !isFinite(s)) return "–";
  const m = Math.floor(s / 60), r = Math.round(s - 60 * m);
  return m ? `${m} min ${r} s` : `${r} s`;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

async function getJSON(path) {
  const response = await fetch(api(path));
  if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || response.statusText);
  return response.json();
}

// -- the run and the list of analyses ------------------------------------------------------------------

async function loadRun() {
  const run = await getJSON("/api/run");
  state.classes = run.classes;
  state.colours = run.colours;
  $("run").textContent = `run: ${run.run}`;
  $("legend").replaceChildren(...run.classes.map((c) => {
    const li = document.createElement("li");
    li.textContent = c;
    li.style.setProperty("--c", run.colours[c]);
    return li;
  }));
}

async function refreshList() {
  const items = await getJSON("/api/analyses");
  $("analyses").replaceChildren(...items.map((a) => {
    const li = document.createElement("li");
    li.dataset.id = a.id;
    li.className = a.id === state.id ? "open" : "";
    const name = document.createElement("span");
    name.textContent = a.name;
    const status = document.createElement("span");
    status.className = "state";
    status.textContent = a.status === "running" && a.seconds
      ? `${Math.round((100 * a.done_seconds) / a.seconds)} %` : a.status;
    li.append(name, status);
    li.addEventListener("click", () => openAnalysis(a.id));
    return li;
  }));
}

// -- upload ------------------------------------------------------------------------------------------------

function upload(file) {
  showMessage("");
  const form = new FormData();
  form.append("video", file, file.name);
  const request = new XMLHttpRequest();
  $("upload").hidden = false;
  request.upload.onprogress = (e) => {
    if (!e.lengthComputable) return;
    $("upload-bar").style.width = `${(100 * e.loaded) / e.total}%`;
    $("upload-text").textContent = `uploading ${file.name}: ${(e.loaded / 1e6).toFixed(1)} of ${(e.total / 1e6).toFixed(1)} MB`;
  };
  request.onload = () => {
    $("upload").hidden = true;
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (err) { body = {}; }
    if (request.status === 202) {
      refreshList();
      openAnalysis(body.id);
    } else {
      showMessage(`${file.name}: ${body.detail || request.statusText}`);
    }
  };
  request.onerror = () => {
    $("upload").hidden = true;
    showMessage(`${file.name}: the upload was cut off; try again`);
  };
  request.open("POST", api("/api/analyses"));
  request.send(form);
}

// -- one analysis --------------------------------------------------------------------------------------------

function openAnalysis(id) {
  if (state.source) state.source.close();
  state.id = id;
  state.windows = [];
  state.record = null;
  $("analysis").hidden = false;
  $("summary").hidden = true;
  $("downloads").hidden = true;
  $("video").src = api(`/api/analyses/${id}/video`);
  for (const li of $("analyses").children) li.className = li.dataset.id === id ? "open" : "";
  getJSON(`/api/analyses/${id}`).then((record) => {
    if (state.id !== id) return; // another analysis was opened meanwhile
    state.record = record;
    $("title").textContent = record.name;
    status(record);
  }).catch((err) => showMessage(err.message));
  const source = new EventSource(api(`/api/analyses/${id}/events`));
  state.source = source;
  source.addEventListener("window", (e) => { // after a reconnection the server goes on after the last id
    state.windows.push(JSON.parse(e.data));
    draw();
  });
  source.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    if (state.record) Object.assign(state.record, p);
    status(p);
  });
  source.addEventListener("end", (e) => {
    source.close();
    const record = JSON.parse(e.data);
    state.record = record;
    status(record);
    finished(record);
    refreshList();
    draw();
  });
  draw();
}

function status(p) {
  const total = p.seconds || 0;
  const done = p.status === "done" ? total : p.done_seconds || 0;
  $("progress-bar").style.width = total ? `${Math.min(100, (100 * done) / total)}%` : "0";
  let text = p.status;
  if (p.status === "running") {
    text = `analysing: ${done.toFixed(1)} of ${total.toFixed(1)} s of video, ${state.windows.length} windows` +
      (p.eta != null ? `, about ${fmtTime(p.eta)} left` : "");
  } else if (p.status === "queued") {
    text = "waiting: another analysis is running";
  } else if (p.status === "done") {
    text = `done: ${state.windows.length} windows over ${total.toFixed(1)} s of video`;
  } else if (p.status === "failed") {
    text = `failed: ${p.error || "unknown error"}`;
  }
  $("status").textContent = text;
}

function finished(record) {
  if (record.status !== "done") return;
  for (const kind of ["csv", "json", "png"]) $(`dl-${kind}`).href = api(`/api/analyses/${record.id}/timeline.${kind}`);
  $("downloads").hidden = false;
  const summary = record.summary;
  if (!summary) return;
  $("shares").replaceChildren(...Object.entries(summary.shares).sort((a, b) => b[1] - a[1]).map(([c, v]) => {
    const row = document.createElement("tr");
    row.innerHTML = `<td></td><td>${(100 * v).toFixed(1)} %</td>`;
    row.firstChild.textContent = c;
    row.firstChild.style.color = state.colours[c] || "";
    return row;
  }));
  $("segments").replaceChildren(...summary.segments.map((s) => {
    const li = document.createElement("li");
    li.textContent = `${s.start.toFixed(1)}–${s.end.toFixed(1)} s: ${s.top || "not decoded"}`;
    li.addEventListener("click", () => { $("video").currentTime = s.start; });
    return li;
  }));
  $("summary").hidden = false;
}

// -- the chart: stacked probabilities over time, the top label as a band below ---------------------------------

const BAND = 22, PAD = 28;

function duration() {
  const last = state.windows.length ? state.windows[state.windows.length - 1].end : 0;
  return Math.max((state.record && state.record.seconds) || 0, last, 1e-3);
}

function draw() {
  const canvas = $("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = 260;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const total = duration(), plotH = height - BAND - PAD - 8;
  const x = (t) => PAD + ((width - 2 * PAD) * t) / total;
  const y = (p) => 4 + plotH * (1 - p);
  const rows = state.windows.filter((w) => !w.error);
  if (rows.length) {
    const centres = rows.map((w) => (w.start + w.end) / 2);
    let below = rows.map(() => 0);
    for (const c of state.classes) {
      const above = rows.map((w, i) => below[i] + (w.probabilities[c] || 0));
      ctx.beginPath();
      centres.forEach((t, i) => (i ? ctx.lineTo(x(t), y(above[i])) : ctx.moveTo(x(t), y(above[i]))));
      for (let i = centres.length - 1; i >= 0; i--) ctx.lineTo(x(centres[i]), y(below[i]));
      ctx.closePath();
      ctx.globalAlpha = 0.85;
      ctx.fillStyle = state.colours[c];
      ctx.fill();
      below = above;
    }
    ctx.globalAlpha = 1;
  }
  for (const w of state.windows) { // the top label of each window's span, as a band
    ctx.fillStyle = w.top ? state.colours[w.top] : "#bbb";
    ctx.fillRect(x(w.start), height - BAND - PAD, Math.max(1, x(w.end) - x(w.start)), BAND);
  }
  ctx.strokeStyle = "#98a2b3";
  ctx.strokeRect(PAD, 4, width - 2 * PAD, plotH);
  ctx.fillStyle = "#667085";
  ctx.font = "12px system-ui, sans-serif";
  const step = Math.max(1, Math.ceil(total / 10));
  for (let t = 0; t <= total + 1e-6; t += step) ctx.fillText(`${t}s`, x(t) - 6, height - 10);
  const now = $("video").currentTime || 0;
  ctx.strokeStyle = "#1d2330";
  ctx.beginPath();
  ctx.moveTo(x(now), 4);
  ctx.lineTo(x(now), height - PAD);
  ctx.stroke();
}

function windowAt(t) {
  let best = null;
  for (const w of state.windows) {
    const d = Math.abs((w.start + w.end) / 2 - t);
    if (w.start <= t + 1e-6 && t <= w.end + 1e-6 && (!best || d < best.d)) best = { w, d };
  }
  return best && best.w;
}

function timeAt(event) {
  const canvas = $("chart"), box = canvas.getBoundingClientRect();
  return Math.max(0, Math.min(duration(), ((event.clientX - box.left - PAD) / (box.width - 2 * PAD)) * duration()));
}

$("chart").addEventListener("mousemove", (event) => {
  const w = windowAt(timeAt(event));
  const tip = $("tip");
  if (!w) { tip.hidden = true; return; }
  const lines = w.error ? [`not decoded: ${w.error}`] : Object.entries(w.probabilities).sort((a, b) => b[1] - a[1])
    .map(([c, p]) => `${c} ${(100 * p).toFixed(1)} %`);
  tip.replaceChildren(...[`${w.start.toFixed(1)}–${w.end.toFixed(1)} s`, ...lines].map((text, i) => {
    const div = document.createElement("div");
    div.textContent = text;
    if (i === 0) div.style.fontWeight = "600";
    return div;
  }));
  tip.hidden = false;
  const box = $("chart").getBoundingClientRect();
  tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 180)}px`;
  tip.style.top = `${event.clientY - box.top + 12}px`;
  tip.dataset.start = w.start;
});
$("chart").addEventListener("mouseleave", () => { $("tip").hidden = true; });
$("chart").addEventListener("click", (event) => {
  const t = timeAt(event);
  $("video").currentTime = t;
  draw();
  overlay();
});

// -- the player: the crop box and the current top label over the picture ----------------------------------------

function overlay() {
  const video = $("video"), canvas = $("overlay");
  canvas.width = video.clientWidth;
  canvas.height = video.clientHeight;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const w = windowAt(video.currentTime || 0);
  $("now-label").textContent = w && w.top ? w.top : "";
  $("now-label").style.background = w && w.top ? state.colours[w.top] : "";
  if (!w || !w.crop || !video.videoWidth) return;
  const [bx, by, bw, bh] = w.crop.face || w.crop.box;
  // the picture is letterboxed inside the element: scale and centre as the player does
  const scale = Math.min(canvas.width / video.videoWidth, canvas.height / video.videoHeight);
  const ox = (canvas.width - scale * video.videoWidth) / 2, oy = (canvas.height - scale * video.videoHeight) / 2;
  ctx.strokeStyle = (w.top && state.colours[w.top]) || "#fff";
  ctx.lineWidth = 3;
  ctx.strokeRect(ox + bx * scale, oy + by * scale, bw * scale, bh * scale);
}

$("video").addEventListener("timeupdate", () => { draw(); overlay(); });
$("video").addEventListener("seeked", () => { draw(); overlay(); });
$("video").addEventListener("loadedmetadata", overlay);
window.addEventListener("resize", () => { draw(); overlay(); });

// -- wiring ----------------------------------------------------------------------------------------------------

$("file").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); e.target.value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
});
$("delete").addEventListener("click", async () => {
  if (!state.id || !confirm("Delete this analysis and its files?")) return;
  const response = await fetch(api(`/api/analyses/${state.id}`), { method: "DELETE" });
  if (response.ok) {
    $("analysis").hidden = true;
    state.id = null;
  } else {
    showMessage((await response.json().catch(() => ({}))).detail || response.statusText);
  }
  refreshList();
});

loadRun().then(refreshList).catch((err) => showMessage(err.message));
setInterval(refreshList, 3000);
