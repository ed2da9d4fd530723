// The page's calls to the service and what it says when they fail.
import assert from 'node:assert/strict'
import { afterEach, beforeEach, test } from 'node:test'

import {
  MOST_PAGES, ServiceError, call, isNetworkError, newestObjects, planOf, plainWords,
} from '../src/service.js'

let online = true
const originalFetch = globalThis.fetch
beforeEach(() => {
  online = true
  Object.defineProperty(globalThis, 'navigator', {
    configurable: true, get: () => ({ onLine: online }) })
})
afterEach(() => {
  globalThis.fetch = originalFetch
})

function answer(status, body) {
  return new Response(body === undefined ? null : JSON.stringify(body),
    { status, statusText: `status ${status}`, headers: { 'Content-Type': 'application/json' } })
}

test('a call sends JSON with the session cookie and reads JSON back', async () => {
  const seen = []
  globalThis.fetch = async (path, init) => {
    seen.push({ path, init })
    return answer(200, { size: 5, part_size: 8388608, parts: 1 })
  }
  assert.deepEqual(await planOf(5), { size: 5, part_size: 8388608, parts: 1 })
  assert.equal(seen[0].path, '/v1/plan?size=5')
  assert.equal(seen[0].init.method, 'GET')
  assert.equal(seen[0].init.credentials, 'same-origin')
  assert.equal(seen[0].init.body, undefined)

  await call('POST', '/v1/session', { token: 'k', body: { a: 1 } })
  assert.equal(seen[1].init.headers.Authorization, 'Bearer k')
  assert.equal(seen[1].init.headers['Content-Type'], 'application/json')
  assert.equal(seen[1].init.body, '{"a":1}')
})

test('a refusal carries the service\'s own explanation and status', async () => {
  globalThis.fetch = async () => answer(400, { detail: 'object of 9 bytes is outside 0..1' })
  const error = await call('GET', '/v1/plan?size=9').catch((e) => e)
  assert.ok(error instanceof ServiceError)
  assert.equal(error.status, 400)
  assert.equal(error.message, 'object of 9 bytes is outside 0..1')
  globalThis.fetch = async () => new Response('not json', { status: 502, statusText: 'Bad' })
  assert.equal((await call('GET', '/x').catch((e) => e)).message, 'Bad')
  globalThis.fetch = async () => new Response(null, { status: 204 })
  assert.equal(await call('DELETE', '/v1/session'), null)
})

test('a network failure is told from an answer of the service', () => {
  assert.equal(isNetworkError(new TypeError('Failed to fetch')), true)
  assert.equal(isNetworkError(new Error('NetworkError when attempting to fetch')), true)
  assert.equal(isNetworkError(new ServiceError(503, 'network storage busy')), false)
  assert.equal(isNetworkError(new Error('something else')), false)
  online = false
  assert.equal(isNetworkError(new Error('something else')), true)
})

test('each failure is said in plain words with what to do', () => {
  const said = (status, detail, name) => plainWords(new ServiceError(status, detail), name)
  assert.match(said(401, 'expired'), /session has ended.*Sign in again/)
  assert.match(said(400, 'object of 9 bytes is the most you may upload', 'a.mp4'),
    /^“a\.mp4” is larger than this service accepts for you/)
  assert.match(said(409, 'too many'), /too many unfinished uploads/)
  assert.match(said(429, 'slow down'), /busy right now.*Retry/)
  assert.match(said(403, 'outside your prefix', 'b.mp4'),
    /^“b\.mp4” cannot be reached with this session: outside your prefix/)
  assert.match(said(502, 'storage failed'), /Storage did not answer properly \(storage failed\)/)
  assert.equal(said(400, 'bad key'), 'The upload was refused: bad key')
  assert.match(plainWords(new TypeError('Failed to fetch')), /^The network is down/)
  assert.equal(plainWords(new Error('boom'), 'c.mp4'), '“c.mp4” failed: boom')
})

test('the newest objects are picked from every page, and at most MOST_PAGES are read', async () => {
  const seen = []
  const object = (key, when) => ({ key, last_modified: when })
  globalThis.fetch = async (path) => {
    seen.push(path)
    const page = seen.length
    return answer(200, {
      objects: [object(`k${page}a`, page % 3), object(`k${page}b`, 10 - page)],
      next_cursor: `c${page}`,
    })
  }
  const newest = await newestObjects(3)
  assert.equal(seen.length, MOST_PAGES)
  assert.equal(seen[0], '/v1/objects?limit=1000')
  assert.equal(seen[1], '/v1/objects?limit=1000&cursor=c1')
  assert.deepEqual(newest.map((o) => o.key), ['k1b', 'k2b', 'k3b'])

  seen.length = 0
  globalThis.fetch = async (path) => {
    seen.push(path)
    return answer(200, { objects: [object('b', 5), object('a', 5)], next_cursor: null })
  }
  assert.deepEqual((await newestObjects(20)).map((o) => o.key), ['a', 'b'])
  assert.equal(seen.length, 1)
})
