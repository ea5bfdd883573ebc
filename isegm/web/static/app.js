// EMC-Click annotation page: clicks go to the server's session API; the page never waits on a request.
//
// Every image has a local record (its clicks, finished objects, the last mask). Each change of
// the clicks bumps the record's version and asks for a sync; syncs run one at a time and send
// the clicks as they are when the request leaves, so clicks made meanwhile are coalesced and the
// last state wins. A session the server evicted is reopened and replayed from the record.
"use strict";

const OVERLAY = [0, 160, 255];       // the current object's colour
const POSITIVE = "#22c55e";
const NEGATIVE = "#ef4444";

const $ = (id) => document.getElementById(id);
const layers = { image: $("image-layer"), mask: $("mask-layer"), clicks: $("click-layer") };
const contexts = {
  image: layers.image.getContext("2d"),
  mask: layers.mask.getContext("2d"),
  clicks: layers.clicks.getContext("2d"),
};

const page = {
  listing: [],            // [{index, name}] of the server's --images folder
  records: new Map(),     // key -> image record
  current: null,          // the record shown
  negativeTaps: false,    // touch screens: a tap adds a negative click
  pending: 0,             // requests queued or in flight
  uploads: 0,
};

class RequestError extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

// ------------------------------------------------------------------------------------ requests
let queue = Promise.resolve();

function enqueue(task) {
  page.pending += 1;
  showBusy();
  const run = queue.then(task).finally(() => { page.pending -= 1; showBusy(); });
  queue = run.catch(() => {});
  return run;
}

async function request(method, path, body, headers) {
  const options = { method, headers: headers || {} };
  if (body !== undefined) {
    options.body = body instanceof Blob ? body : JSON.stringify(body);
    if (!(body instanceof Blob)) options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new RequestError(response.status, data);
  return data;
}

async function openSession(record) {
  const opened = record.file
    ? await request("POST", `api/sessions?name=${encodeURIComponent(record.name)}`, record.file,
                    { "Content-Type": record.file.type || "application/octet-stream" })
    : await request("POST", "api/sessions", { image: record.index });
  record.session = opened.session;
  // After an eviction: replay the finished objects, then the current clicks.
  for (const object of record.objects) {
    await request("POST", `api/sessions/${record.session}/clicks`, { clicks: object.clicks });
    await request("POST", `api/sessions/${record.session}/objects`, { threshold: object.threshold });
  }
  if (record.clicks.length) {
    await request("POST", `api/sessions/${record.session}/clicks`, { clicks: record.clicks.slice() });
  }
}

// A call on the record's session, reopening it once when the server no longer has it.
async function sessionCall(record, path, body) {
  for (let attempt = 0; ; attempt++) {
    if (!record.session) await openSession(record);
    try {
      return await request("POST", `api/sessions/${record.session}/${path}`, body);
    } catch (error) {
      if (error.code !== "unknown_session" || attempt > 0) throw error;
      record.session = null;
    }
  }
}

// ------------------------------------------------------------------------------------ clicks
function requestSync(record) {
  if (record.syncQueued) return;
  record.syncQueued = true;
  enqueue(async () => {
    record.syncQueued = false;
    if (record.synced === record.version) return;
    const version = record.version;
    const clicks = record.clicks.slice();
    const started = performance.now();
    try {
      const answer = await sessionCall(record, "clicks", { clicks, format: "png" });
      record.synced = version;
      if (version !== record.version) return;   // newer clicks are queued: show their answer
      record.probs = clicks.length ? await decodePng(answer.mask.data, record) : null;
      record.latency = { total: performance.now() - started, model: answer.timings_ms.model,
                         backbone: answer.backbone, clicks: clicks.length };
      if (record === page.current) { renderMask(); showLatency(); }
      document.body.dataset.shownVersion = String(version);
    } catch (error) {
      record.synced = version;
      showError(error);
    }
  });
}

function addClick(record, x, y, positive) {
  record.clicks.push({ x, y, positive });
  changed(record);
}

function changed(record) {
  record.version += 1;
  document.body.dataset.version = String(record.version);
  renderClicks();
  requestSync(record);
}

function undo() {
  const record = page.current;
  if (!record || !record.clicks.length) return;
  record.clicks.pop();
  changed(record);
}

function reset() {
  const record = page.current;
  if (!record || !record.clicks.length) return;
  record.clicks = [];
  changed(record);
}

function finishObject() {
  const record = page.current;
  if (!record || !record.clicks.length) return;
  const threshold = Number($("threshold").value);
  enqueue(async () => {
    try {
      if (record.synced !== record.version) {   // clicked after pressing finish
        showMessage("the clicks changed: press Finish object again");
        return;
      }
      const answer = await sessionCall(record, "objects", { threshold });
      record.objects.push({ clicks: record.clicks.slice(), threshold });
      record.instances = await decodePng(answer.instances.data, record);
      record.clicks = [];
      record.probs = null;
      record.version += 1;
      record.synced = record.version;   // the server has no clicks either
      document.body.dataset.version = document.body.dataset.shownVersion = String(record.version);
      if (record === page.current) { renderMask(); renderClicks(); }
      showMessage(`object ${answer.object} kept; click on the next one`);
    } catch (error) {
      showError(error);
    }
  });
}

function save() {
  const record = page.current;
  if (!record) return;
  const threshold = Number($("threshold").value);
  enqueue(async () => {
    try {
      const answer = await sessionCall(record, "save", { threshold });
      showMessage(`saved ${answer.objects} object(s): ${answer.files.join(", ")}`);
    } catch (error) {
      showError(error);
    }
  });
}

// ------------------------------------------------------------------------------------ images
function newRecord(key, name, url, index, file) {
  return { key, name, url, index, file, session: null, clicks: [], objects: [], version: 0, synced: 0,
           syncQueued: false, probs: null, instances: null, latency: null, image: null, width: 0, height: 0 };
}

async function show(record) {
  page.current = record;
  $("image-name").textContent = record.index === null ? record.name
    : `${record.name} (${record.index + 1}/${page.listing.length})`;
  if (!record.image) {
    const image = new Image();
    image.src = record.url;
    await image.decode();
    Object.assign(record, { image, width: image.naturalWidth, height: image.naturalHeight });
  }
  if (page.current !== record) return;
  for (const canvas of Object.values(layers)) {
    canvas.width = record.width;
    canvas.height = record.height;
  }
  contexts.image.drawImage(record.image, 0, 0);
  fit();
  renderMask();
  renderClicks();
  showLatency();
  document.body.dataset.image = record.name;
  if (!record.session) enqueue(() => openSession(record).catch(showError));
}

function step(delta) {
  if (!page.listing.length) return;
  const at = page.current && page.current.index !== null ? page.current.index : -1;
  const index = (at + delta + page.listing.length) % page.listing.length;
  const entry = page.listing[index];
  const key = `listing:${index}`;
  if (!page.records.has(key)) {
    page.records.set(key, newRecord(key, entry.name, `api/images/${index}/file`, index, null));
  }
  show(page.records.get(key)).catch(showError);
}

function upload(file) {
  page.uploads += 1;
  const key = `upload:${page.uploads}`;
  const record = newRecord(key, file.name, URL.createObjectURL(file), null, file);
  page.records.set(key, record);
  show(record).catch(showError);
}

// ------------------------------------------------------------------------------------ drawing
function decodePng(base64, record) {
  const image = new Image();
  image.src = `data:image/png;base64,${base64}`;
  return image.decode().then(() => {
    const canvas = document.createElement("canvas");
    canvas.width = record.width;
    canvas.height = record.height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(image, 0, 0);
    const rgba = context.getImageData(0, 0, record.width, record.height).data;
    const values = new Uint8Array(record.width * record.height);
    for (let i = 0; i < values.length; i++) values[i] = rgba[4 * i];
    return values;
  });
}

function objectColour(id) {
  const hue = (30 + (id - 1) * 137.508) % 360;   // golden angle from orange: neighbouring ids differ
  const c = (1 - Math.abs(((hue / 60) % 2) - 1)) * 255;
  const table = [[255, c, 0], [c, 255, 0], [0, 255, c], [0, c, 255], [c, 0, 255], [255, 0, c]];
  return table[Math.floor(hue / 60) % 6];
}

function renderMask() {
  const record = page.current;
  if (!record || !record.width) return;
  const { width, height, probs, instances } = record;
  const out = contexts.mask.createImageData(width, height);
  const data = out.data;
  const cut = Math.round(Number($("threshold").value) * 255);   // the server keeps p > threshold
  const alpha = Math.round(Number($("opacity").value) * 255);
  const colours = new Map();
  for (let i = 0; i < width * height; i++) {
    let colour = null;
    if (probs && probs[i] > cut) colour = OVERLAY;
    else if (instances && instances[i]) {
      if (!colours.has(instances[i])) colours.set(instances[i], objectColour(instances[i]));
      colour = colours.get(instances[i]);
    }
    if (colour) {
      data[4 * i] = colour[0];
      data[4 * i + 1] = colour[1];
      data[4 * i + 2] = colour[2];
      data[4 * i + 3] = alpha;
    }
  }
  contexts.mask.putImageData(out, 0, 0);
}

function renderClicks() {
  const record = page.current;
  const context = contexts.clicks;
  context.clearRect(0, 0, layers.clicks.width, layers.clicks.height);
  if (!record) return;
  const scale = layers.clicks.width / Math.max(1, layers.clicks.getBoundingClientRect().width);
  const radius = 5 * scale;
  for (const click of record.clicks) {
    context.beginPath();
    context.arc(click.x + 0.5, click.y + 0.5, radius, 0, 2 * Math.PI);
    context.fillStyle = click.positive ? POSITIVE : NEGATIVE;
    context.fill();
    context.lineWidth = 1.5 * scale;
    context.strokeStyle = "white";
    context.stroke();
  }
}

function fit() {
  const record = page.current;
  if (!record) return;
  const stage = $("stage").getBoundingClientRect();
  const scale = Math.min(stage.width / record.width, stage.height / record.height);
  const box = $("canvases");
  box.style.width = `${Math.floor(record.width * scale)}px`;
  box.style.height = `${Math.floor(record.height * scale)}px`;
  layers.image.style.width = box.style.width;
  layers.image.style.height = box.style.height;
  renderClicks();
}

// ------------------------------------------------------------------------------------ status
function showBusy() {
  $("busy").hidden = page.pending === 0;
  document.body.dataset.pending = String(page.pending);
}

function showLatency() {
  const latency = page.current && page.current.latency;
  $("latency").textContent = latency
    ? `click ${latency.clicks}: ${latency.total.toFixed(0)} ms (model ${latency.model.toFixed(0)} ms, `
      + `${latency.backbone ? "backbone + head" : "head only"})`
    : "\u2013";
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").classList.remove("error");
}

function showError(error) {
  $("message").textContent = `error: ${error.message}`;
  $("message").classList.add("error");
}

// ------------------------------------------------------------------------------------ input
function pixelOf(event) {
  const rect = layers.clicks.getBoundingClientRect();
  const record = page.current;
  const x = Math.floor(((event.clientX - rect.left) / rect.width) * record.width);
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * record.height);
  return [Math.min(Math.max(x, 0), record.width - 1), Math.min(Math.max(y, 0), record.height - 1)];
}

layers.clicks.addEventListener("pointerdown", (event) => {
  const record = page.current;
  if (!record || !record.width || (event.button !== 0 && event.button !== 2)) return;
  event.preventDefault();
  const [x, y] = pixelOf(event);
  const positive = event.button === 0 && !(event.pointerType !== "mouse" && page.negativeTaps);
  addClick(record, x, y, positive);
});
layers.clicks.addEventListener("contextmenu", (event) => event.preventDefault());

$("prev").addEventListener("click", () => step(-1));
$("next").addEventListener("click", () => step(1));
$("undo").addEventListener("click", undo);
$("reset").addEventListener("click", reset);
$("finish").addEventListener("click", finishObject);
$("save").addEventListener("click", save);
$("upload").addEventListener("change", (event) => {
  if (event.target.files.length) upload(event.target.files[0]);
  event.target.value = "";
});
$("mode").addEventListener("click", () => {
  page.negativeTaps = !page.negativeTaps;
  $("mode").setAttribute("aria-pressed", String(page.negativeTaps));
  $("mode").textContent = `tap adds: ${page.negativeTaps ? "negative" : "positive"}`;
});
$("opacity").addEventListener("input", renderMask);
$("threshold").addEventListener("input", () => {
  $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
  renderMask();
});
window.addEventListener("resize", fit);
window.addEventListener("keydown", (event) => {
  const key = event.key.toLowerCase();
  const inInput = event.target instanceof HTMLInputElement;   // a slider keeps its arrow keys
  if (inInput && (event.target.type !== "range" || key.startsWith("arrow"))) return;
  if ((event.ctrlKey || event.metaKey) && key === "z") { event.preventDefault(); undo(); }
  else if ((event.ctrlKey || event.metaKey) && key === "s") { event.preventDefault(); save(); }
  else if (key === "enter") { event.preventDefault(); finishObject(); }
  else if (key === "arrowleft") step(-1);
  else if (key === "arrowright") step(1);
});

// ------------------------------------------------------------------------------------ start
(async () => {
  try {
    const info = await request("GET", "api/info");
    $("model-info").textContent = `${info.model} on ${info.device}`
      + (info.can_save ? "" : " \u00b7 saving off (start the server with --output)");
    $("save").disabled = !info.can_save;
    page.listing = (await request("GET", "api/images")).images;
    $("prev").disabled = $("next").disabled = page.listing.length < 2;
    if (page.listing.length) step(1);
    else showMessage("no image listing: open an image with Open\u2026");
  } catch (error) {
    showError(error);
  }
})();
