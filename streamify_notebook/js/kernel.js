// Requests to the kernel side (streamify_notebook/_browser.py) over the widget's messages,
// each answered by id. When the kernel restarts, the widget's connection is gone for good:
// every request waiting or made after that fails with KernelGone.

// The upload cannot go on, for a reason the message says in plain words.
export class UploadStop extends Error {}

// The kernel this widget belonged to restarted or stopped.
export class KernelGone extends UploadStop {
  constructor() {
    super("the kernel restarted");
  }
}

// Ids are unique across connections: every connection of a model hears every answer.
let next = 0;

export function connect(model) {
  let gone = false;
  const waiting = new Map();
  const onMessage = (msg) => {
    const request = waiting.get(msg.id);
    if (!request) return;
    waiting.delete(msg.id);
    if (msg.error) request.reject(new UploadStop(msg.error));
    else request.resolve(msg);
  };
  // ipywidgets tells a model its kernel went away (restart, shutdown) by this event; a
  // model never comes back to life, so it means disconnected for good.
  const onDisconnect = () => {
    gone = true;
    for (const request of waiting.values()) request.reject(new KernelGone());
    waiting.clear();
  };
  model.on("msg:custom", onMessage);
  model.on("comm_live_update", onDisconnect);
  const request = (op, fields) => new Promise((resolve, reject) => {
    if (gone) {
      reject(new KernelGone());
      return;
    }
    const id = `r${++next}`;
    waiting.set(id, { resolve, reject });
    try {
      model.send({ id, op, ...fields });
    } catch {
      waiting.delete(id); // "Cannot send": the kernel is gone
      reject(new KernelGone());
    }
  });
  const close = () => {
    model.off("msg:custom", onMessage);
    model.off("comm_live_update", onDisconnect);
  };
  return { request, close };
}
