import assert from "node:assert/strict";
import { WarningLimiter } from "../../src/transport/warning_limiter.ts";

Deno.test("WarningLimiter lets `limit` warnings through per window and counts the rest", () => {
  let now = 0;
  const limiter = new WarningLimiter(3, 1000, () => now);
  const first = Array.from({ length: 10 }, () => limiter.allow());
  assert.deepEqual(first, [true, true, true, false, false, false, false, false, false, false]);
  now = 1000;
  assert.equal(limiter.allow(), true);
  assert.equal(limiter.takeSuppressed(), 7);
  assert.equal(limiter.takeSuppressed(), 0);
});
