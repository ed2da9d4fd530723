// The two lists under the Dashboard, both as the service reports them (any browser or
// program of the same principal may have started the uploads): the caller's unfinished
// uploads, and its most recently completed objects.

import { ServiceError, abortUpload, newestObjects, openUploads, partsOf } from './service.js'

const KEEP = 20

export function formatBytes(bytes) {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

function row(children) {
  const item = document.createElement('li')
  item.append(...children)
  return item
}

function text(tag, className, content) {
  const element = document.createElement(tag)
  element.className = className
  element.textContent = content
  return element
}

let openGeneration = 0

export async function renderOpenUploads(list, empty, onAbort) {
  const generation = ++openGeneration
  const { uploads } = await openUploads()
  const held = await Promise.all(uploads.map(async (upload) => {
    try {
      const { parts } = await partsOf(upload)
      return { count: parts.length, bytes: parts.reduce((sum, part) => sum + part.size, 0) }
    } catch (error) {
      if (error instanceof ServiceError && error.status === 404) return null // just finished
      throw error
    }
  }))
  if (generation !== openGeneration) return // a newer refresh is drawing the list
  list.replaceChildren(...uploads.flatMap((upload, index) => {
    if (held[index] === null) return []
    const { count, bytes } = held[index]
    const abort = text('button', 'abort', 'Abort')
    abort.type = 'button'
    abort.setAttribute('aria-label', `Abort the upload of ${upload.key}`)
    abort.addEventListener('click', async () => {
      abort.disabled = true
      try {
        await abortUpload(upload)
        onAbort(upload)
      } finally {
        await renderOpenUploads(list, empty, onAbort)
      }
    })
    const started = upload.initiated ? new Date(upload.initiated * 1000).toLocaleString() : ''
    const item = row([
      text('span', 'key', upload.key),
      text('span', 'held', `storage holds ${formatBytes(bytes)} in ${count} ` +
        `part${count === 1 ? '' : 's'}${started ? `, started ${started}` : ''}`),
      abort,
    ])
    item.dataset.uploadId = upload.upload_id
    item.dataset.heldBytes = String(bytes)
    return [item]
  }))
  empty.hidden = list.children.length > 0
}

// The newest of the caller's completed objects, from the service: whichever browser or
// program uploaded them.
export async function renderCompleted(list, empty) {
  const objects = await newestObjects(KEEP)
  list.replaceChildren(...objects.map((info) => {
    const when = new Date(info.last_modified * 1000).toLocaleString()
    const item = row([text('span', 'key', info.key),
      text('span', 'held', `${formatBytes(info.size)}, completed ${when}`)])
    item.dataset.key = info.key
    return item
  }))
  empty.hidden = list.children.length > 0
}
