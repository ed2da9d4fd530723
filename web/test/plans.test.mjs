// The page's part plans: what the service planned, kept by size, asked once per size.
import assert from 'node:assert/strict'
import { test } from 'node:test'

import { PartPlans, planFiles } from '../src/plans.js'

const MiB = 1024 * 1024
const plan = (size, partSize) => ({ size, part_size: partSize,
  parts: Math.max(1, Math.ceil(size / partSize)) })

test('a file is cut by the plan the service gave for its size', () => {
  const plans = new PartPlans()
  plans.remember(plan(100 * 1024 * MiB, 11 * MiB))
  assert.equal(plans.partSize(100 * 1024 * MiB), 11 * MiB)
  assert.equal(plans.inParts(100 * 1024 * MiB), true)
})

test('a file of one part goes in one request, not as a multipart upload', () => {
  const plans = new PartPlans()
  plans.remember(plan(8 * MiB, 8 * MiB))
  plans.remember(plan(0, 8 * MiB))
  plans.remember(plan(8 * MiB + 1, 8 * MiB))
  assert.equal(plans.inParts(8 * MiB), false)
  assert.equal(plans.inParts(0), false)
  assert.equal(plans.inParts(8 * MiB + 1), true)
})

test('a size the service was not asked about has no plan of the page\'s own', () => {
  const plans = new PartPlans()
  assert.throws(() => plans.partSize(200 * MiB), /No part plan for a file of 209715200 bytes/)
  assert.throws(() => plans.inParts(200 * MiB), /Press Retry/)
})

test('the service is asked once per size, and every file gets its plan', async () => {
  const plans = new PartPlans()
  const asked = []
  const ask = async (size) => {
    asked.push(size)
    return plan(size, 8 * MiB)
  }
  const files = [{ size: 20 * MiB }, { size: 3 * MiB }, { size: 20 * MiB }]
  const planned = await planFiles(plans, files, ask)
  assert.deepEqual(asked, [20 * MiB, 3 * MiB])
  assert.deepEqual(planned.map((p) => p.parts), [3, 1, 3])
  assert.equal(plans.partSize(20 * MiB), 8 * MiB)
  await planFiles(plans, [{ size: 3 * MiB }], ask)
  assert.deepEqual(asked, [20 * MiB, 3 * MiB], 'a known size is not asked again')
})

test('a file begun before a reload keeps the plan it carries', async () => {
  const plans = new PartPlans()
  const carried = plan(40 * MiB, 10 * MiB)
  const ask = async () => assert.fail('a file carrying its plan is not planned again')
  const [kept] = await planFiles(plans, [{ size: 40 * MiB, streamifyPlan: carried }], ask)
  assert.equal(kept, carried)
  assert.equal(plans.partSize(40 * MiB), 10 * MiB)
})

test('a failed answer fails the planning and plans nothing', async () => {
  const plans = new PartPlans()
  const refused = new Error('offline')
  await assert.rejects(planFiles(plans, [{ size: MiB }], async () => { throw refused }),
    refused)
  assert.equal(plans.has(MiB), false)
})
