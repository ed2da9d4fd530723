// Calls from the page to the Streamify API service that serves it: same origin, so the
// session cookie (HttpOnly, SameSite=Strict) goes along and the page never holds it.

export class ServiceError extends Error {
  constructor(status, detail) {
    super(detail)
    this.name = 'ServiceError'
    this.status = status
  }
}

async function detailOf(response) {
  try {
    const body = await response.json()
    return body.detail || body.error || response.statusText
  } catch {
    return response.statusText
  }
}

// One call: JSON in and out. A failed answer raises ServiceError (with the service's own
// explanation), a network failure raises TypeError (what fetch raises).
export async function call(method, path, { token, body } = {}) {
  const headers = {}
  if (token) headers.Authorization = `Bearer ${token}`
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  })
  if (!response.ok) throw new ServiceError(response.status, await detailOf(response))
  return response.status === 204 ? null : response.json()
}

export const signIn = (token) => call('POST', '/v1/session', { token })
export const signInOnce = (code) => call('POST', '/v1/session/link', { body: { code } })
export const signOut = () => call('DELETE', '/v1/session')
export const openUploads = () => call('GET', '/v1/uploads')
export const partsOf = (upload) => call('GET',
  `/v1/uploads/${encodeURIComponent(upload.upload_id)}/parts?key=${encodeURIComponent(upload.key)}`)
export const abortUpload = (upload) => call('DELETE',
  `/v1/uploads/${encodeURIComponent(upload.upload_id)}?key=${encodeURIComponent(upload.key)}`)
export const limitsOf = () => call('GET', '/v1/limits')
export const planOf = (size) => call('GET', `/v1/plan?size=${size}`)

const OBJECTS_PER_PAGE = 1000
export const MOST_PAGES = 10

// The caller's `keep` most recently completed objects, newest first. The service lists in
// key order, one S3 read of up to 1,000 keys a page, so the newest are picked here, among
// the first MOST_PAGES pages (10,000 objects): a larger prefix shows its newest among those.
export async function newestObjects(keep) {
  let newest = []
  let cursor = null
  for (let page = 0; page < MOST_PAGES; page += 1) {
    const after = cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''
    const answer = await call('GET', `/v1/objects?limit=${OBJECTS_PER_PAGE}${after}`)
    newest = newest.concat(answer.objects)
      .sort((a, b) => b.last_modified - a.last_modified || (a.key < b.key ? -1 : 1))
      .slice(0, keep)
    cursor = answer.next_cursor
    if (!cursor) break
  }
  return newest
}

// Uppy's Companion client keeps only the status text of a failed answer; the page wants
// the service's explanation, so it notes the last failed answer from /s3/ routes.
export function watchCompanionAnswers(onFailure) {
  const original = window.fetch.bind(window)
  window.fetch = async (input, init) => {
    const response = await original(input, init)
    const url = typeof input === 'string' ? input : input.url
    if (!response.ok && new URL(url, window.location.href).pathname.startsWith('/s3/')) {
      onFailure(new ServiceError(response.status, await detailOf(response.clone())))
    }
    return response
  }
}

// Whether an error is the network's (down, or the request never got an answer), not an
// answer of the service's.
export function isNetworkError(error) {
  return !(error instanceof ServiceError) && (!navigator.onLine || error instanceof TypeError ||
    /network/i.test(String(error)))
}

// What went wrong, in plain words, and what to do about it.
export function plainWords(error, fileName) {
  const what = fileName ? `“${fileName}”` : 'The upload'
  if (error instanceof ServiceError) {
    const detail = String(error.message || '')
    if (error.status === 401) {
      return 'Your session has ended (it expired, or your API key was changed). ' +
        'Sign in again: unfinished uploads continue from what storage already holds.'
    }
    if (/most you may upload|object-too-large/.test(detail)) {
      return `${what} is larger than this service accepts for you (${detail}). ` +
        'Nothing of it was kept.'
    }
    if (error.status === 409) {
      return 'You have too many unfinished uploads. Finish or abort some of them ' +
        '(listed below), then try again.'
    }
    if (error.status === 429) {
      return 'The service is busy right now. Wait a few seconds, then press Retry.'
    }
    if (error.status === 403) {
      return `${what} cannot be reached with this session: ${detail}`
    }
    if (error.status >= 500) {
      return `Storage did not answer properly (${detail}). Press Retry in a moment: ` +
        'the upload continues from the parts already stored.'
    }
    return `${what} was refused: ${detail}`
  }
  if (isNetworkError(error)) {
    return 'The network is down. The upload stopped; it goes on from the parts already ' +
      'stored as soon as you are back online (or press Retry then).'
  }
  return `${what} failed: ${error && error.message ? error.message : error}`
}
