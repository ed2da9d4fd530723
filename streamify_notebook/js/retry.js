// What a failed part PUT means and how long to wait, by the core's own table: the kernel
// sends `RetryBudget.table()` (core/streamify/_retry.py) when the upload opens, so this
// page and the core's `classify_status` cannot drift apart. Nothing here is decided anew.

// "gone" | "fatal" | "retry" | "resign" for an HTTP error answer and its S3 error code,
// trying the table's rules in the table's order, as `classify_status` does.
export function classify(table, status, code) {
  for (const kind of table.order) {
    const rule = table[kind];
    if (rule.codes.includes(code)) return kind;
    if ((rule.statuses || []).includes(status)) return kind;
    const codes = (rule.status_codes || {})[String(status)];
    if (codes && codes.includes(code)) return kind;
    if (rule.from_status !== undefined && status >= rule.from_status) return kind;
  }
  return "fatal";
}

// Whether the code means the credentials are wrong or not allowed.
export function denied(table, code) {
  return table.denied_codes.includes(code);
}

// How long one part may keep failing: `max_attempts` attempts or `retry_for` seconds from
// its first failure, whichever ends first; exponential backoff with full jitter, and a
// server's Retry-After as a floor (as `RetryBudget.next_delay`).
export class RetryBudget {
  constructor(table, random = Math.random) {
    this.table = table;
    this.random = random;
    this.attempts = 0;
    this.firstFailure = null;
  }

  // Seconds to wait before the next attempt, or null when the budget is spent.
  nextDelay(now, retryAfter = null) {
    const t = this.table;
    this.attempts += 1;
    if (this.firstFailure === null) this.firstFailure = now;
    const elapsed = now - this.firstFailure;
    if (this.attempts >= t.max_attempts || elapsed >= t.retry_for) return null;
    let delay = this.random() * Math.min(t.backoff_max, t.backoff_base * 2 ** (this.attempts - 1));
    if (retryAfter !== null) delay = Math.max(delay, Math.min(retryAfter, t.backoff_max * 3));
    return Math.max(0, Math.min(delay, t.retry_for - elapsed));
  }
}

// Seconds from a Retry-After header in its delay form; null if absent or a date.
export function parseRetryAfter(value) {
  if (!value || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return null;
  return Math.max(0, Number(value));
}
