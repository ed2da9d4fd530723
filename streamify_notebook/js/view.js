// The view of streamify_notebook's widgets.
//
// kind "kernel"  (Uploader): inputs and buttons; the kernel does the upload and sets the
//                state this view draws.
// kind "browser" (BrowserUploader): this page sends the chosen file (see upload.js).
//
// When the kernel restarts, the widget shows "disconnected" with every control disabled:
// its buttons would reach no one. Re-running the cell makes a live widget.

import { progressLine } from "./format.js";
import { KernelGone, UploadStop, connect } from "./kernel.js";
import { BrowserUpload } from "./upload.js";

function element(tag, props, children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children || []) node.append(child);
  return node;
}

const BUSY = ["starting", "uploading", "pausing", "cancelling"];

export function render({ model, el }) {
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

  // Set when the kernel went away: what this view says instead of the model's last state.
  let disconnected = null;

  const draw = () => {
    const status = disconnected ? "disconnected" : model.get("status");
    const done = model.get("bytes_done");
    const total = model.get("total_bytes");
    root.dataset.status = status;
    root.dataset.bytesDone = String(done);
    const percent = total ? (100 * done) / total : 0;
    fill.style.width = `${percent}%`;
    bar.setAttribute("aria-valuenow", String(Math.floor(percent)));
    numbers.textContent = [status, progressLine(model)].filter(Boolean).join(" · ");
    detail.textContent = disconnected ? disconnected.detail : model.get("detail");
    error.textContent = disconnected ? disconnected.error : model.get("error");
    const busy = BUSY.includes(status);
    buttons.Start.disabled = busy || status === "paused";
    buttons.Pause.disabled = status !== "uploading";
    buttons.Resume.disabled = status !== "paused";
    buttons.Cancel.disabled = !(busy || status === "paused");
    const frozen = busy || Boolean(disconnected);
    if (disconnected) for (const button of Object.values(buttons)) button.disabled = true;
    if (sourceInput) sourceInput.disabled = frozen;
    destInput.disabled = frozen;
    if (fileInput) fileInput.disabled = frozen;
  };
  for (const name of ["status", "bytes_done", "total_bytes", "bytes_per_second", "seconds_left", "detail", "error"]) {
    model.on(`change:${name}`, draw);
  }

  let upload = null;
  const onDisconnect = () => {
    const unfinished = upload && !["completed", "cancelled"].includes(model.get("status"));
    if (upload) upload.pause();
    disconnected = {
      detail: "The kernel restarted (or stopped), so this widget reaches no one: re-run the cell " +
        (kind === "kernel" ? "and the new widget resumes the upload from what S3 holds." : "to upload again."),
      error: unfinished ? upload.kernelGone() : "",
    };
    draw();
  };
  model.on("comm_live_update", onDisconnect);
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
    return () => model.off("comm_live_update", onDisconnect);
  }

  // Before a file is chosen, the kernel says which files have unfinished uploads here.
  if (model.get("status") === "ready") {
    const look = connect(model);
    look.request("look", {}).catch(() => {}).finally(look.close);
  }

  const go = async (step) => {
    try {
      await step();
    } catch (e) {
      if (e instanceof KernelGone || disconnected) {
        onDisconnect();
        return;
      }
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
  return () => {
    model.off("comm_live_update", onDisconnect);
    if (upload) { upload.pause(); upload.kernel.close(); }
  };
}
