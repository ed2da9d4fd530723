// A browser upload: this page reads the chosen file in slices and PUTs each part straight
// to S3 through URLs the kernel presigns; only small JSON goes over the widget's messages.
// The kernel decides (with the core) what to resume, how the file is cut and how failures
// are retried; this page reads, hashes and sends. The upload's identity is kept in
// localStorage, so choosing the same file after a page reload resumes it.

import { MiB, formatBytes } from "./format.js";
import { KernelGone, UploadStop, connect } from "./kernel.js";
import { md5 } from "./md5.js";
import { abortAll, put, s3Code } from "./put.js";
import { RetryBudget, classify, denied, parseRetryAfter } from "./retry.js";

export class Paused extends Error {}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const now = () => performance.now() / 1000;

export class BrowserUpload {
  constructor(model, file) {
    this.model = model;
    this.file = file;
    this.kernel = connect(model);
    this.stopping = null; // "pause" | "cancel" | "fail"
    this.inFlight = new Map();
    this.doneBytes = 0;
    this.sentParts = 0;
    this.successes = 0;
    this.networkFailures = 0;
    this.samples = [];
    this.paceAt = 0;
    this.startedAt = now();
    const dest = model.get("destination");
    this.storageKey = `streamify:${dest}|${file.name}|${file.size}|${file.lastModified}`;
  }

  set(fields) {
    for (const [name, value] of Object.entries(fields)) this.model.set(name, value);
    this.model.save_changes();
  }

  progress(force) {
    const t = now();
    let bytes = this.doneBytes;
    for (const n of this.inFlight.values()) bytes += n;
    this.samples.push([t, bytes]);
    while (this.samples.length > 2 && t - this.samples[1][0] >= 5) this.samples.shift();
    if (!force && t - (this.lastSync || 0) < 0.25) return;
    this.lastSync = t;
    const [t0, b0] = this.samples[0];
    const rate = t > t0 ? Math.max(0, (bytes - b0) / (t - t0)) : 0;
    this.set({
      bytes_done: bytes,
      bytes_per_second: rate,
      seconds_left: rate > 0 ? (this.file.size - bytes) / rate : null,
      parts_sent: this.sentParts,
    });
  }

  // Ask the kernel to open the upload; it asks back for the MD5s of the ranges S3 holds
  // parts of, until it can tell which parts are this file's.
  async open() {
    const remembered = JSON.parse(localStorage.getItem(this.storageKey) || "null");
    const fields = {
      name: this.file.name, size: this.file.size,
      upload_id: remembered ? remembered.upload_id : null,
      part_size: remembered ? remembered.part_size : null,
    };
    let opened = await this.kernel.request("open", fields);
    while (opened.hash) {
      const md5s = [];
      for (const [offset, size] of opened.hash) {
        const bytes = await this.file.slice(offset, offset + size).arrayBuffer();
        md5s.push([offset, size, md5(bytes).hex]);
      }
      opened = await this.kernel.request("open", { ...fields, md5s });
    }
    return opened;
  }

  async run() {
    this.set({ status: "starting", error: "", detail: "", file_name: this.file.name, total_bytes: this.file.size });
    const opened = await this.open();
    this.opened = opened;
    localStorage.setItem(this.storageKey, JSON.stringify({ upload_id: opened.upload_id, part_size: opened.part_size }));
    this.finished = new Map(opened.present.map((part) => [part.number, part]));
    for (const part of this.finished.values()) this.doneBytes += part.size;
    this.resumedBytes = this.doneBytes;
    const resumed = this.finished.size;
    this.set({
      status: "uploading", parts_resumed: resumed,
      detail: resumed ? `resumed: ${formatBytes(this.doneBytes)} (${resumed} parts) were already in S3` : "",
    });
    this.progress(true);
    this.todo = [];
    for (let n = 1; n <= opened.parts.length; n++) if (!this.finished.has(n)) this.todo.push(n);
    return this.send();
  }

  async send() {
    this.stopping = null;
    this.set({ status: "uploading" });
    const failures = [];
    const worker = async () => {
      while (this.todo.length && !this.stopping) {
        const number = this.todo.shift();
        try {
          this.finished.set(number, await this.sendPart(number));
        } catch (error) {
          if (!(error instanceof Paused)) failures.push(error);
          this.todo.unshift(number);
          this.stopping = this.stopping || "fail";
        }
      }
    };
    const workers = [];
    for (let i = 0; i < Math.max(1, this.model.get("concurrency")); i++) workers.push(worker());
    await Promise.all(workers);
    if (failures.length) throw failures.find((e) => e instanceof KernelGone) || failures[0];
    if (this.stopping === "cancel") return this.abort();
    if (this.stopping === "pause") {
      this.progress(true);
      this.set({ status: "paused", detail: `paused at ${formatBytes(this.doneBytes)}; press Resume to go on`, bytes_per_second: 0, seconds_left: null });
      return;
    }
    return this.complete();
  }

  async complete() {
    this.set({ detail: "asking S3 to assemble the parts" });
    const parts = [...this.finished.values()].sort((a, b) => a.number - b.number);
    const answer = await this.kernel.request("complete", {
      name: this.file.name, upload_id: this.opened.upload_id, size: this.file.size, parts,
    });
    localStorage.removeItem(this.storageKey);
    const seconds = Math.max(0.001, now() - this.startedAt);
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

  // Part `number` of the kernel's plan.
  slice(number) {
    const [offset, size] = this.opened.parts[number - 1];
    return this.file.slice(offset, offset + size);
  }

  // Paces part starts so that this page sends at most `bwlimit` bytes per second.
  async pace(size) {
    const limit = this.model.get("bwlimit");
    if (!limit) return;
    const t = now();
    const start = Math.max(t, this.paceAt);
    this.paceAt = start + size / limit;
    if (start > t) await sleep(start - t);
  }

  async sign(number, blob, digest) {
    const answer = await this.kernel.request("sign", {
      name: this.file.name, upload_id: this.opened.upload_id,
      parts: [{ number, size: blob.size, md5: digest.base64 }],
    });
    return answer.parts[0];
  }

  async sendPart(number) {
    // The bytes are read once for the MD5; the PUT sends the slice itself, which the
    // browser streams from the file (several times faster than sending a copy).
    const blob = this.slice(number);
    const digest = md5(await blob.arrayBuffer());
    const table = this.opened.retry;
    const budget = new RetryBudget(table);
    let signed = null;
    for (;;) {
      if (this.stopping) throw new Paused();
      if (!signed) signed = await this.sign(number, blob, digest);
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
        // without CORS headers (some stores send an expired URL's 403 that way). Until
        // storage has taken a part, such failures get the core's first-contact budget.
        this.networkFailures++;
        if (!this.successes && this.networkFailures >= table.first_contact_attempts) {
          throw new UploadStop(this.corsHint(signed.url));
        }
        signed = null;
        reason = "the connection to storage failed";
      } else {
        const code = s3Code(result.text);
        const action = classify(table, result.status, code);
        if (action === "gone") {
          localStorage.removeItem(this.storageKey);
          throw new UploadStop("S3 no longer has this upload (aborted or expired); choose the file again to start over");
        }
        if (action === "fatal") {
          const what = denied(table, code) ? "refused access to" : "refused";
          throw new UploadStop(`storage ${what} part ${number} of ${this.file.name}: HTTP ${result.status} ${code}`.trim());
        }
        if (action === "resign") signed = null;
        reason = `HTTP ${result.status} ${code}`.trim();
      }
      const delay = budget.nextDelay(now(), parseRetryAfter(result.retryAfter));
      if (delay === null) {
        throw new UploadStop(`part ${number} of ${this.file.name} failed ${budget.attempts} times (last: ${reason}); choose the file again to resume`);
      }
      this.set({ detail: `retrying part ${number} in ${delay.toFixed(1)} s (attempt ${budget.attempts}): ${reason}` });
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
    return "Storage accepted the part but hid its ETag from the browser: the bucket's CORS rule " +
      `must expose the ETag header. Fix it with: streamify setup-bucket s3://${this.bucket()} ` +
      `--cors-origin ${location.origin}`;
  }

  // What the analyst reads when the kernel went away mid-upload.
  kernelGone() {
    const name = this.file.name;
    return `The kernel restarted, so this upload of ${name} stopped at ${formatBytes(this.doneBytes)} ` +
      `(the parts sent stay in S3): re-run the cell and choose ${name} again to resume it.`;
  }

  pause() { this.stopping = "pause"; }

  cancel() {
    this.stopping = "cancel";
    abortAll();
  }
}
