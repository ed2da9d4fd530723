// The page reads the core's retry table (RetryBudget.table(), sent by the kernel when an
// upload opens). These tests take that table from the core itself and check that the page
// classifies every failure as core/streamify/_retry.py's classify_status does, and spends
// the same budget, so the two cannot drift apart.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { RetryBudget, classify, denied, parseRetryAfter } from "../retry.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const venv = join(root, ".venv", "bin", "python");
const python = process.env.PYTHON || (existsSync(venv) ? venv : "python3");

const statuses = [400, 403, 404, 405, 408, 409, 411, 412, 429, 500, 501, 502, 503, 504, 599];

// The core's table, and its classify_status for every status with every code it knows.
const core = JSON.parse(execFileSync(python, ["-c", `
import json, sys
from streamify import UploadConfig
from streamify._retry import classify_status
table = UploadConfig(max_attempts=7, retry_for=60, backoff_base=0.5, backoff_max=8).retry_budget().table()
codes = sorted({c for k in table["order"] for c in table[k]["codes"]} | set(table["denied_codes"])
               | {"", "NoSuchKey", "upload-gone", "SomethingElse"})
statuses = json.loads(sys.argv[1])
verdicts = {f"{s} {c}": classify_status(s, c).name.lower() for s in statuses for c in codes}
print(json.dumps({"table": table, "codes": codes, "verdicts": verdicts}))
`, JSON.stringify(statuses)], { cwd: root, encoding: "utf8" }));

const names = { retry: "retry", resign: "resign", upload_gone: "gone", fatal: "fatal" };

test("every status and code is classified as the core classifies it", () => {
  for (const status of statuses) {
    for (const code of core.codes) {
      const expected = names[core.verdicts[`${status} ${code}`]];
      assert.equal(classify(core.table, status, code), expected, `HTTP ${status} ${code}`);
    }
  }
});

test("the codes that mean access denied are the core's", () => {
  assert.ok(denied(core.table, "AccessDenied"));
  assert.ok(denied(core.table, "InvalidAccessKeyId"));
  assert.ok(!denied(core.table, "SlowDown"));
});

test("the budget ends after max_attempts attempts", () => {
  const budget = new RetryBudget(core.table, () => 1);
  const delays = [];
  for (let delay = budget.nextDelay(0); delay !== null; delay = budget.nextDelay(0)) delays.push(delay);
  // Full jitter's ceiling doubles from backoff_base up to backoff_max.
  assert.deepEqual(delays, [0.5, 1, 2, 4, 8, 8]);
  assert.equal(budget.attempts, core.table.max_attempts);
});

test("the budget ends after retry_for seconds, and never waits past it", () => {
  const budget = new RetryBudget(core.table, () => 1);
  assert.equal(budget.nextDelay(100), 0.5);
  assert.equal(budget.nextDelay(159), 1); // 60 s budget: 1 s left
  assert.equal(budget.nextDelay(159.5), 0.5);
  assert.equal(budget.nextDelay(160), null);
});

test("Retry-After is a floor, capped at three times backoff_max", () => {
  const budget = new RetryBudget(core.table, () => 0);
  assert.equal(budget.nextDelay(0, 5), 5);
  assert.equal(budget.nextDelay(0, 600), 24);
  assert.equal(parseRetryAfter("7"), 7);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), null);
  assert.equal(parseRetryAfter(null), null);
});
