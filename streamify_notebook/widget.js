// The view of streamify_notebook's widgets (anywidget ES module, no build step).
//
// kind "kernel"  (Uploader): inputs and buttons; the kernel does the upload and sets the
//                state this view draws.
// kind "browser" (BrowserUploader): this page reads the chosen file in slices and PUTs each
//                part straight to S3 through URLs the kernel presigns; only small JSON goes
//                over the widget's messages. The upload's identity is kept in localStorage,
//                so choosing the same file after a page reload resumes it.

const MiB = 1024 * 1024;

// ---------------------------------------------------------------- formatting
function formatBytes(n) {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(2)} GiB`;
  return `${(n / MiB).toFixed(1)} MiB`;
}

function formatSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "";
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function progressLine(model) {
  const done = model.get("bytes_done");
  const total = model.get("total_bytes");
  if (!total) return "";
  const parts = [`${formatBytes(done)} of ${formatBytes(total)} (${Math.floor((100 * done) / total)}%)`];
  const rate = model.get("bytes_per_second");
  if (rate > 0) parts.push(`${(rate / MiB).toFixed(1)} MiB/s`);
  const left = formatSeconds(model.get("seconds_left"));
  if (left && done < total) parts.push(`${left} left`);
  return parts.join(" · ");
}

// ---------------------------------------------------------------- MD5 (RFC 1321)
// SubtleCrypto has no MD5, and S3's Content-MD5 and part ETags are MD5.
// Unrolled (the round constants are RFC 1321's): about ten times the speed of a loop.
function md5Blocks(h, x, count) {
  let a0 = h[0], b0 = h[1], c0 = h[2], d0 = h[3];
  for (let o = 0; o < count * 16; o += 16) {
    let a = a0, b = b0, c = c0, d = d0;
    const x0 = x[o], x1 = x[o + 1], x2 = x[o + 2], x3 = x[o + 3], x4 = x[o + 4], x5 = x[o + 5],
      x6 = x[o + 6], x7 = x[o + 7], x8 = x[o + 8], x9 = x[o + 9], x10 = x[o + 10],
      x11 = x[o + 11], x12 = x[o + 12], x13 = x[o + 13], x14 = x[o + 14], x15 = x[o + 15];
    a = b + rotl(a + ((b & c) | (~b & d)) + x0 - 680876936 | 0, 7) | 0;
    d = a + rotl(d + ((a & b) | (~a & c)) + x1 - 389564586 | 0, 12) | 0;
    c = d + rotl(c + ((d & a) | (~d & b)) + x2 + 606105819 | 0, 17) | 0;
    b = c + rotl(b + ((c & d) | (~c & a)) + x3 - 1044525330 | 0, 22) | 0;
    a = b + rotl(a + ((b & c) | (~b & d)) + x4 - 176418897 | 0, 7) | 0;
    d = a + rotl(d + ((a & b) | (~a & c)) + x5 + 1200080426 | 0, 12) | 0;
    c = d + rotl(c + ((d & a) | (~d & b)) + x6 - 1473231341 | 0, 17) | 0;
    b = c + rotl(b + ((c & d) | (~c & a)) + x7 - 45705983 | 0, 22) | 0;
    a = b + rotl(a + ((b & c) | (~b & d)) + x8 + 1770035416 | 0, 7) | 0;
    d = a + rotl(d + ((a & b) | (~a & c)) + x9 - 1958414417 | 0, 12) | 0;
    c = d + rotl(c + ((d & a) | (~d & b)) + x10 - 42063 | 0, 17) | 0;
    b = c + rotl(b + ((c & d) | (~c & a)) + x11 - 1990404162 | 0, 22) | 0;
    a = b + rotl(a + ((b & c) | (~b & d)) + x12 + 1804603682 | 0, 7) | 0;
    d = a + rotl(d + ((a & b) | (~a & c)) + x13 - 40341101 | 0, 12) | 0;
    c = d + rotl(c + ((d & a) | (~d & b)) + x14 - 1502002290 | 0, 17) | 0;
    b = c + rotl(b + ((c & d) | (~c & a)) + x15 + 1236535329 | 0, 22) | 0;

    a = b + rotl(a + ((b & d) | (c & ~d)) + x1 - 165796510 | 0, 5) | 0;
    d = a + rotl(d + ((a & c) | (b & ~c)) + x6 - 1069501632 | 0, 9) | 0;
    c = d + rotl(c + ((d & b) | (a & ~b)) + x11 + 643717713 | 0, 14) | 0;
    b = c + rotl(b + ((c & a) | (d & ~a)) + x0 - 373897302 | 0, 20) | 0;
    a = b + rotl(a + ((b & d) | (c & ~d)) + x5 - 701558691 | 0, 5) | 0;
    d = a + rotl(d + ((a & c) | (b & ~c)) + x10 + 38016083 | 0, 9) | 0;
    c = d + rotl(c + ((d & b) | (a & ~b)) + x15 - 660478335 | 0, 14) | 0;
    b = c + rotl(b + ((c & a) | (d & ~a)) + x4 - 405537848 | 0, 20) | 0;
    a = b + rotl(a + ((b & d) | (c & ~d)) + x9 + 568446438 | 0, 5) | 0;
    d = a + rotl(d + ((a & c) | (b & ~c)) + x14 - 1019803690 | 0, 9) | 0;
    c = d + rotl(c + ((d & b) | (a & ~b)) + x3 - 187363961 | 0, 14) | 0;
    b = c + rotl(b + ((c & a) | (d & ~a)) + x8 + 1163531501 | 0, 20) | 0;
    a = b + rotl(a + ((b & d) | (c & ~d)) + x13 - 1444681467 | 0, 5) | 0;
    d = a + rotl(d + ((a & c) | (b & ~c)) + x2 - 51403784 | 0, 9) | 0;
    c = d + rotl(c + ((d & b) | (a & ~b)) + x7 + 1735328473 | 0, 14) | 0;
    b = c + rotl(b + ((c & a) | (d & ~a)) + x12 - 1926607734 | 0, 20) | 0;

    a = b + rotl(a + (b ^ c ^ d) + x5 - 378558 | 0, 4) | 0;
    d = a + rotl(d + (a ^ b ^ c) + x8 - 2022574463 | 0, 11) | 0;
    c = d + rotl(c + (d ^ a ^ b) + x11 + 1839030562 | 0, 16) | 0;
    b = c + rotl(b + (c ^ d ^ a) + x14 - 35309556 | 0, 23) | 0;
    a = b + rotl(a + (b ^ c ^ d) + x1 - 1530992060 | 0, 4) | 0;
    d = a + rotl(d + (a ^ b ^ c) + x4 + 1272893353 | 0, 11) | 0;
    c = d + rotl(c + (d ^ a ^ b) + x7 - 155497632 | 0, 16) | 0;
    b = c + rotl(b + (c ^ d ^ a) + x10 - 1094730640 | 0, 23) | 0;
    a = b + rotl(a + (b ^ c ^ d) + x13 + 681279174 | 0, 4) | 0;
    d = a + rotl(d + (a ^ b ^ c) + x0 - 358537222 | 0, 11) | 0;
    c = d + rotl(c + (d ^ a ^ b) + x3 - 722521979 | 0, 16) | 0;
    b = c + rotl(b + (c ^ d ^ a) + x6 + 76029189 | 0, 23) | 0;
    a = b + rotl(a + (b ^ c ^ d) + x9 - 640364487 | 0, 4) | 0;
    d = a + rotl(d + (a ^ b ^ c) + x12 - 421815835 | 0, 11) | 0;
    c = d + rotl(c + (d ^ a ^ b) + x15 + 530742520 | 0, 16) | 0;
    b = c + rotl(b + (c ^ d ^ a) + x2 - 995338651 | 0, 23) | 0;

    a = b + rotl(a + (c ^ (b | ~d)) + x0 - 198630844 | 0, 6) | 0;
    d = a + rotl(d + (b ^ (a | ~c)) + x7 + 1126891415 | 0, 10) | 0;
    c = d + rotl(c + (a ^ (d | ~b)) + x14 - 1416354905 | 0, 15) | 0;
    b = c + rotl(b + (d ^ (c | ~a)) + x5 - 57434055 | 0, 21) | 0;
    a = b + rotl(a + (c ^ (b | ~d)) + x12 + 1700485571 | 0, 6) | 0;
    d = a + rotl(d + (b ^ (a | ~c)) + x3 - 1894986606 | 0, 10) | 0;
    c = d + rotl(c + (a ^ (d | ~b)) + x10 - 1051523 | 0, 15) | 0;
    b = c + rotl(b + (d ^ (c | ~a)) + x1 - 2054922799 | 0, 21) | 0;
    a = b + rotl(a + (c ^ (b | ~d)) + x8 + 1873313359 | 0, 6) | 0;
    d = a + rotl(d + (b ^ (a | ~c)) + x15 - 30611744 | 0, 10) | 0;
    c = d + rotl(c + (a ^ (d | ~b)) + x6 - 1560198380 | 0, 15) | 0;
    b = c + rotl(b + (d ^ (c | ~a)) + x13 + 1309151649 | 0, 21) | 0;
    a = b + rotl(a + (c ^ (b | ~d)) + x4 - 145523070 | 0, 6) | 0;
    d = a + rotl(d + (b ^ (a | ~c)) + x11 - 1120210379 | 0, 10) | 0;
    c = d + rotl(c + (a ^ (d | ~b)) + x2 + 718787259 | 0, 15) | 0;
    b = c + rotl(b + (d ^ (c | ~a)) + x9 - 343485551 | 0, 21) | 0;

    a0 = a0 + a | 0; b0 = b0 + b | 0; c0 = c0 + c | 0; d0 = d0 + d | 0;
  }
  h[0] = a0; h[1] = b0; h[2] = c0; h[3] = d0;
}
function rotl(x, s) { return (x << s) | (x >>> (32 - s)); }

// Returns {hex, base64} of the MD5 of an ArrayBuffer (words read little-endian).
export function md5(buffer) {
  const bytes = new Uint8Array(buffer);
  const length = bytes.length;
  const whole = Math.floor(length / 64);
  const h = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
  md5Blocks(h, new Int32Array(bytes.buffer, bytes.byteOffset, whole * 16), whole);
  const rest = length - whole * 64;
  const tail = new Uint8Array(rest < 56 ? 64 : 128);
  tail.set(bytes.subarray(whole * 64));
  tail[rest] = 0x80;
  const view = new DataView(tail.buffer);
  const bits = length * 8;
  view.setUint32(tail.length - 8, bits % 2 ** 32, true);
  view.setUint32(tail.length - 4, Math.floor(bits / 2 ** 32), true);
  md5Blocks(h, new Int32Array(tail.buffer), tail.length / 64);
  const digest = new Uint8Array(h.buffer);
  let hex = "";
  let binary = "";
  for (const byte of digest) {
    hex += byte.toString(16).padStart(2, "0");
    binary += String.fromCharCode(byte);
  }
  return { hex, base64: btoa(binary) };
}

// ---------------------------------------------------------------- kernel requests
function connect(model) {
  let next = 0;
  const waiting = new Map();
  const onMessage = (msg) => {
    const resolve = waiting.get(msg.id);
    if (resolve) { waiting.delete(msg.id); resolve(msg); }
  };
  model.on("msg:custom", onMessage);
  const request = (op, fields) => new Promise((resolve, reject) => {
    const id = `r${++next}`;
    waiting.set(id, (answer) => (answer.error ? reject(new UploadStop(answer.error)) : resolve(answer)));
    model.send({ id, op, ...fields });
  });
  const close = () => model.off("msg:custom", onMessage);
  return { request, close };
}

class UploadStop extends Error {}

// ---------------------------------------------------------------- one part's PUT
function put(signed, body, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", signed.url);
    for (const [name, value] of Object.entries(signed.headers || {})) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => resolve({ status: xhr.status, etag: xhr.getResponseHeader("ETag"), text: xhr.responseText, xhr });
    xhr.onerror = () => resolve({ status: 0, etag: null, text: "", xhr });
    xhr.onabort = () => resolve({ status: -1, etag: null, text: "", xhr });
    put.active.add(xhr);
    xhr.onloadend = () => put.active.delete(xhr);
    xhr.send(body);
  });
}
put.active = new Set();

function s3Code(text) {
  const match = /<Code>([^<]+)<\/Code>/.exec(text || "");
  return match ? match[1] : "";
}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

// ---------------------------------------------------------------- the browser upload
class BrowserUpload {
  constructor(model, file) {
    this.model = model;
    this.file = file;
    this.kernel = connect(model);
    this.stopping = null; // "pause" | "cancel"
    this.inFlight = new Map();
    this.doneBytes = 0;
    this.sentParts = 0;
    this.successes = 0;
    this.networkFailures = 0;
    this.samples = [];
    this.paceAt = 0;
    this.startedAt = performance.now() / 1000;
    const dest = model.get("destination");
    this.storageKey = `streamify:${dest}|${file.name}|${file.size}|${file.lastModified}`;
  }

  set(fields) {
    for (const [name, value] of Object.entries(fields)) this.model.set(name, value);
    this.model.save_changes();
  }

  progress(force) {
    const now = performance.now() / 1000;
    let bytes = this.doneBytes;
    for (const n of this.inFlight.values()) bytes += n;
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[1][0] >= 5) this.samples.shift();
    if (!force && now - (this.lastSync || 0) < 0.25) return;
    this.lastSync = now;
    const [t0, b0] = this.samples[0];
    const rate = now > t0 ? Math.max(0, (bytes - b0) / (now - t0)) : 0;
    this.set({
      bytes_done: bytes,
      bytes_per_second: rate,
      seconds_left: rate > 0 ? (this.file.size - bytes) / rate : null,
      parts_sent: this.sentParts,
    });
  }

  async run() {
    const remembered = JSON.parse(localStorage.getItem(this.storageKey) || "null");
    this.set({ status: "starting", error: "", detail: "", file_name: this.file.name, total_bytes: this.file.size });
    const opened = await this.kernel.request("open", {
      name: this.file.name, size: this.file.size,
      upload_id: remembered ? remembered.upload_id : null,
      part_size: remembered ? remembered.part_size : null,
    });
    this.opened = opened;
    localStorage.setItem(this.storageKey, JSON.stringify({ upload_id: opened.upload_id, part_size: opened.part_size }));
    this.set({ status: "uploading" });
    const present = new Map();
    for (const part of opened.present) {
      // S3 is the truth, but a part counts only if it holds this file's bytes.
      if (/^[0-9a-f]{32}$/.test(part.etag)) {
        const digest = md5(await this.slice(part.number).arrayBuffer());
        if (digest.hex !== part.etag) continue;
      }
      present.set(part.number, { number: part.number, etag: part.etag, size: part.size });
    }
    for (const part of present.values()) this.doneBytes += part.size;
    this.resumedBytes = this.doneBytes;
    this.set({
      parts_resumed: present.size,
      detail: present.size ? `resumed: ${formatBytes(this.doneBytes)} (${present.size} parts) were already in S3` : "",
    });
    this.progress(true);
    this.todo = [];
    for (let n = 1; n <= opened.parts; n++) if (!present.has(n)) this.todo.push(n);
    this.finished = present;
    return this.send();
  }

  async send() {
    this.stopping = null;
    this.set({ status: "uploading" });
    const workers = [];
    const failures = [];
    for (let i = 0; i < Math.max(1, this.model.get("concurrency")); i++) {
      workers.push((async () => {
        while (this.todo.length && !this.stopping && !failures.length) {
          const number = this.todo.shift();
          try {
            this.finished.set(number, await this.sendPart(number));
          } catch (error) {
            if (!(error instanceof Paused)) failures.push(error);
            this.todo.unshift(number);
            this.stopping = this.stopping || "fail";
          }
        }
      })());
    }
    await Promise.all(workers);
    if (failures.length) throw failures[0];
    if (this.stopping === "cancel") return this.abort();
    if (this.stopping === "pause") {
      this.progress(true);
      this.set({ status: "paused", detail: `paused at ${formatBytes(this.doneBytes)}; press Resume to go on`, bytes_per_second: 0, seconds_left: null });
      return;
    }
    this.set({ detail: "asking S3 to assemble the parts" });
    const parts = [...this.finished.values()].sort((a, b) => a.number - b.number);
    const answer = await this.kernel.request("complete", { name: this.file.name, upload_id: this.opened.upload_id, parts });
    localStorage.removeItem(this.storageKey);
    const seconds = Math.max(0.001, performance.now() / 1000 - this.startedAt);
    const sentBytes = answer.size - this.resumedBytes;
    this.set({
      status: "completed", bytes_done: answer.size, bytes_per_second: 0, seconds_left: null,
      parts_sent: this.sentParts,
      detail: `uploaded ${formatBytes(answer.size)} to s3://${this.bucket()}/${this.opened.key} in ` +
        `${seconds.toFixed(1)} s (${(sentBytes / MiB / seconds).toFixed(1)} MiB/s): ` +
        `${this.sentParts} parts sent from this page, ${this.model.get("parts_resumed")} were already in S3`,
    });
  }

  async abort() {
    this.stopping = "cancel";
    await this.kernel.request("abort", { name: this.file.name, upload_id: this.opened.upload_id });
    localStorage.removeItem(this.storageKey);
    this.set({ status: "cancelled", detail: "cancelled; the parts sent were discarded", bytes_per_second: 0, seconds_left: null });
  }

  bucket() {
    return this.model.get("destination").replace(/^s3:\/\//, "").split("/")[0];
  }

  slice(number) {
    const offset = (number - 1) * this.opened.part_size;
    return this.file.slice(offset, Math.min(this.file.size, offset + this.opened.part_size));
  }

  // Paces part starts so that this page sends at most ``bwlimit`` bytes per second.
  async pace(size) {
    const limit = this.model.get("bwlimit");
    if (!limit) return;
    const now = performance.now() / 1000;
    const start = Math.max(now, this.paceAt);
    this.paceAt = start + size / limit;
    if (start > now) await sleep(start - now);
  }

  async sendPart(number) {
    // The bytes are read once for the MD5; the PUT sends the slice itself, which the
    // browser streams from the file (several times faster than sending a copy).
    const blob = this.slice(number);
    const digest = md5(await blob.arrayBuffer());
    const maxAttempts = this.model.get("max_attempts");
    let signed = null;
    for (let attempt = 1; ; attempt++) {
      if (this.stopping) throw new Paused();
      if (!signed) {
        const answer = await this.kernel.request("sign", {
          name: this.file.name, upload_id: this.opened.upload_id,
          parts: [{ number, size: blob.size, md5: digest.base64 }],
        });
        signed = answer.parts[0];
      }
      await this.pace(blob.size);
      if (this.stopping) throw new Paused();
      const result = await put(signed, blob, (loaded) => { this.inFlight.set(number, loaded); this.progress(false); });
      this.inFlight.delete(number);
      let reason;
      if (result.status === 200) {
        if (result.etag === null) throw new UploadStop(this.etagHidden());
        if (result.etag.replace(/"/g, "") === digest.hex) {
          this.successes++;
          this.sentParts++;
          this.doneBytes += blob.size;
          this.progress(true);
          return { number, etag: digest.hex, size: blob.size };
        }
        reason = "the ETag S3 answered is not the part's MD5";
      } else if (result.status === -1) {
        throw new Paused();
      } else if (result.status === 0) {
        // The browser hides why: a dropped connection, a CORS refusal, or an error answer
        // without CORS headers (some stores send an expired URL's 403 that way).
        this.networkFailures++;
        if (!this.successes && this.networkFailures >= 3) throw new UploadStop(this.corsHint(signed.url));
        signed = null;
        reason = "the connection to storage failed";
      } else {
        const code = s3Code(result.text);
        if (result.status === 404 && code === "NoSuchUpload") {
          localStorage.removeItem(this.storageKey);
          throw new UploadStop(`S3 no longer has this upload (aborted or expired); choose the file again to start over`);
        }
        if (result.status === 403) signed = null; // expired or refused URL: sign again
        else if (!(result.status >= 500 || result.status === 429 || result.status === 408 || code === "BadDigest" || code === "RequestTimeout")) {
          throw new UploadStop(`storage refused part ${number} of ${this.file.name}: HTTP ${result.status} ${code}`);
        }
        reason = `HTTP ${result.status} ${code}`.trim();
      }
      if (attempt >= maxAttempts) {
        throw new UploadStop(`part ${number} of ${this.file.name} failed ${attempt} times (last: ${reason}); choose the file again to resume`);
      }
      const cap = Math.min(this.model.get("backoff_max"), this.model.get("backoff_base") * 2 ** attempt);
      const delay = Math.random() * cap; // full jitter
      this.set({ detail: `retrying part ${number} in ${delay.toFixed(1)} s (attempt ${attempt}): ${reason}` });
      await sleep(delay);
    }
  }

  corsHint(url) {
    const storage = new URL(url).origin;
    return `Your browser could not send data to the storage at ${storage}. Most likely the bucket's ` +
      `CORS rule does not allow this page's origin (${location.origin}). Allow it with: ` +
      `streamify setup-bucket s3://${this.bucket()} --cors-origin ${location.origin}`;
  }

  etagHidden() {
    return `Storage accepted the part but hid its ETag from the browser: the bucket's CORS rule ` +
      `must expose the ETag header. Fix it with: streamify setup-bucket s3://${this.bucket()} ` +
      `--cors-origin ${location.origin}`;
  }

  pause() { this.stopping = "pause"; }

  cancel() {
    this.stopping = "cancel";
    for (const xhr of put.active) xhr.abort();
  }
}

class Paused extends Error {}

// ---------------------------------------------------------------- the view
function element(tag, props, children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children || []) node.append(child);
  return node;
}

function render({ model, el }) {
  const kind = model.get("kind");
  const root = element("div", { className: "streamify-upload" });
  const fields = element("div", { className: "streamify-fields" });
  let sourceInput = null;
  let fileInput = null;
  if (kind === "kernel") {
    const listId = `streamify-choices-${Math.random().toString(36).slice(2)}`;
    sourceInput = element("input", { type: "text", className: "streamify-source", placeholder: "path or fsspec URL the kernel can read" });
    sourceInput.setAttribute("list", listId);
    const list = element("datalist", { id: listId });
    const fillChoices = () => list.replaceChildren(...model.get("choices").map((c) => element("option", { value: c })));
    fillChoices();
    model.on("change:choices", fillChoices);
    sourceInput.value = model.get("source");
    sourceInput.addEventListener("change", () => { model.set("source", sourceInput.value); model.save_changes(); });
    fields.append(element("label", {}, [element("span", { textContent: "Source" }), sourceInput, list]));
  } else {
    fileInput = element("input", { type: "file", className: "streamify-file" });
    fields.append(element("label", {}, [element("span", { textContent: "File" }), fileInput]));
  }
  const destInput = element("input", { type: "text", className: "streamify-destination", placeholder: "s3://bucket/key" });
  destInput.value = model.get("destination");
  destInput.addEventListener("change", () => { model.set("destination", destInput.value); model.save_changes(); });
  fields.append(element("label", {}, [element("span", { textContent: "Destination" }), destInput]));

  const buttons = {};
  for (const name of ["Start", "Pause", "Resume", "Cancel"]) {
    buttons[name] = element("button", { textContent: name, className: `streamify-${name.toLowerCase()}` });
  }
  const fill = element("div", { className: "streamify-fill" });
  const bar = element("div", { className: "streamify-bar" }, [fill]);
  bar.setAttribute("role", "progressbar");
  const numbers = element("div", { className: "streamify-numbers" });
  const detail = element("div", { className: "streamify-detail" });
  const error = element("div", { className: "streamify-error" });
  error.setAttribute("role", "alert");
  root.append(fields, element("div", { className: "streamify-buttons" }, Object.values(buttons)), bar, numbers, detail, error);
  el.append(root);

  const draw = () => {
    const status = model.get("status");
    const done = model.get("bytes_done");
    const total = model.get("total_bytes");
    root.dataset.status = status;
    root.dataset.bytesDone = String(done);
    const percent = total ? (100 * done) / total : 0;
    fill.style.width = `${percent}%`;
    bar.setAttribute("aria-valuenow", String(Math.floor(percent)));
    numbers.textContent = [status, progressLine(model)].filter(Boolean).join(" · ");
    detail.textContent = model.get("detail");
    error.textContent = model.get("error");
    const busy = ["starting", "uploading", "pausing", "cancelling"].includes(status);
    buttons.Start.disabled = busy || status === "paused";
    buttons.Pause.disabled = status !== "uploading";
    buttons.Resume.disabled = status !== "paused";
    buttons.Cancel.disabled = !(busy || status === "paused");
    if (sourceInput) sourceInput.disabled = busy;
    destInput.disabled = busy;
    if (fileInput) fileInput.disabled = busy;
  };
  for (const name of ["status", "bytes_done", "total_bytes", "bytes_per_second", "seconds_left", "detail", "error"]) {
    model.on(`change:${name}`, draw);
  }
  draw();

  if (kind === "kernel") {
    const command = (name) => () => {
      model.set("source", sourceInput.value);
      model.set("destination", destInput.value);
      model.save_changes();
      model.send({ command: name });
    };
    buttons.Start.addEventListener("click", command("start"));
    buttons.Pause.addEventListener("click", command("pause"));
    buttons.Resume.addEventListener("click", command("resume"));
    buttons.Cancel.addEventListener("click", command("cancel"));
    return () => {};
  }

  let upload = null;
  const go = async (step) => {
    try {
      await step();
    } catch (e) {
      const message = e instanceof UploadStop ? e.message : `The upload stopped on an unexpected error: ${e}`;
      upload.set({ status: "failed", error: message, detail: "", bytes_per_second: 0, seconds_left: null });
    }
  };
  const start = () => {
    const file = fileInput.files[0];
    if (!file) {
      model.set("error", "Choose a file first.");
      model.save_changes();
      return;
    }
    if (upload) upload.kernel.close();
    upload = new BrowserUpload(model, file);
    go(() => upload.run());
  };
  fileInput.addEventListener("change", start);
  buttons.Start.addEventListener("click", start);
  buttons.Pause.addEventListener("click", () => {
    if (upload) { upload.pause(); upload.set({ status: "pausing" }); }
  });
  buttons.Resume.addEventListener("click", () => { if (upload) go(() => upload.send()); });
  buttons.Cancel.addEventListener("click", () => {
    if (!upload) return;
    if (model.get("status") === "paused") go(() => upload.abort());
    else { upload.cancel(); upload.set({ status: "cancelling" }); }
  });
  return () => { if (upload) { upload.pause(); upload.kernel.close(); } };
}

export default { render };
