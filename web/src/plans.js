// How the page cuts a file into parts: as the service plans it (GET /v1/plan, the core's
// one planner), never by a rule of its own, because a resumed upload must be cut exactly
// as it was begun, whichever client began it. Uppy asks for a part size knowing only the
// file's size, so plans are kept by size (the service plans every file of a size alike).

export class PartPlans {
  #bySize = new Map()

  // Keep `plan`, as the service answers it: { size, part_size, parts }.
  remember(plan) {
    this.#bySize.set(plan.size, plan)
  }

  has(size) {
    return this.#bySize.has(size)
  }

  get(size) {
    return this.#bySize.get(size)
  }

  #of(size) {
    const plan = this.#bySize.get(size)
    if (!plan) {
      throw new Error(`No part plan for a file of ${size} bytes: the service was not ` +
        'asked for one. Press Retry.')
    }
    return plan
  }

  // The size of every part but the last of a file of `size` bytes.
  partSize(size) {
    return this.#of(size).part_size
  }

  // Whether a file goes as a multipart upload: a file of one part goes in one request.
  inParts(size) {
    return this.#of(size).parts > 1
  }
}

// The plan of each of `files` ({ size, streamifyPlan }), remembered in `plans`: the plan a
// file carries (it was begun with it, before a reload), else the one known for its size,
// else what `ask(size)` answers, asked once per size.
export async function planFiles(plans, files, ask) {
  const asked = new Map()
  const askOnce = (size) => {
    if (!asked.has(size)) asked.set(size, ask(size))
    return asked.get(size)
  }
  return Promise.all(files.map(async (file) => {
    const plan = file.streamifyPlan || plans.get(file.size) || await askOnce(file.size)
    plans.remember(plan)
    return plan
  }))
}
