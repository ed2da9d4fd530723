// How the lists under the uploader write sizes.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { formatBytes } from '../src/lists.js'

test('sizes are written in the largest binary unit under 1,024 of it', () => {
  assert.equal(formatBytes(0), '0 bytes')
  assert.equal(formatBytes(1023), '1023 bytes')
  assert.equal(formatBytes(1024), '1.0 KiB')
  assert.equal(formatBytes(1536), '1.5 KiB')
  assert.equal(formatBytes(20 * 1024 * 1024), '20 MiB')
  assert.equal(formatBytes(200 * 1024 ** 3), '200 GiB')
  assert.equal(formatBytes(5 * 1024 ** 4), '5.0 TiB')
  assert.equal(formatBytes(2048 * 1024 ** 4), '2048 TiB', 'TiB is the largest unit')
})
