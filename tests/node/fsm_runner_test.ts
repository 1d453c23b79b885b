/**
 * The FSM runner hands committed entries to the FSM in order: one `apply`
 * per Normal entry, or runs of them to `applyBatch`; noop and configuration
 * entries never reach the FSM, and every entry is settled with its result.
 */

import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { encodeConfiguration } from "../../src/core/membership.ts";
import { type Entry, EntryType } from "../../src/core/types.ts";
import type { FSM, FSMEntry } from "../../src/fsm.ts";
import { HistogramRecorder } from "../../src/metrics.ts";
import { RealClock } from "../../src/platform/clock.ts";
import { FsmRunner } from "../../src/node/fsm_runner.ts";

const conf = encodeConfiguration({ servers: [{ id: "n1", address: "a", suffrage: "voter" }] });
const entries: Entry[] = [
  { index: 1, term: 1, type: EntryType.Configuration, data: conf },
  { index: 2, term: 1, type: EntryType.Normal, data: new Uint8Array([2]) },
  { index: 3, term: 1, type: EntryType.Normal, data: new Uint8Array([3]) },
  { index: 4, term: 2, type: EntryType.Noop, data: new Uint8Array() },
  { index: 5, term: 2, type: EntryType.Normal, data: new Uint8Array([5]) },
];

function run(fsm: FSM<string>): Array<[number, number, unknown]> {
  const settled: Array<[number, number, unknown]> = [];
  const clock = new RealClock();
  const runner = new FsmRunner(
    fsm,
    {
      settle: (index, term, response) => settled.push([index, term, response]),
      drained: () => {},
      fail: (e) => {
        throw e;
      },
      exclusive: (f) => f(),
    },
    clock,
    new HistogramRecorder(),
    getLogger(["raftd", "test"]),
  );
  runner.enqueue(entries.slice(0, 3));
  runner.enqueue(entries.slice(1)); // 2 and 3 again: applied once
  runner.drain();
  clock.close();
  assert.equal(runner.appliedIndex, 5);
  assert.equal(runner.appliedConfiguration.index, 1);
  return settled;
}

const noSnapshot = {
  snapshot: () => ({ persist: async () => {}, release: () => {} }),
  restore: async () => {},
};

Deno.test("FsmRunner: one apply per Normal entry, every entry settled once, in order", () => {
  const seen: number[] = [];
  const settled = run({
    apply: (e: FSMEntry) => (seen.push(e.index), `r${e.index}`),
    ...noSnapshot,
  });
  assert.deepEqual(seen, [2, 3, 5]);
  assert.deepEqual(settled, [[1, 1, undefined], [2, 1, "r2"], [3, 1, "r3"], [4, 2, undefined], [
    5,
    2,
    "r5",
  ]]);
});

Deno.test("FsmRunner: runs of Normal entries go to applyBatch; the others split them", () => {
  const batches: number[][] = [];
  const settled = run({
    apply: () => {
      throw new Error("apply must not be called when applyBatch exists");
    },
    applyBatch: (batch: FSMEntry[]) => {
      batches.push(batch.map((e) => e.index));
      return batch.map((e) => `b${e.index}`);
    },
    ...noSnapshot,
  });
  assert.deepEqual(batches, [[2, 3], [5]]);
  assert.deepEqual(settled.map(([i, , r]) => [i, r]), [[1, undefined], [2, "b2"], [3, "b3"], [
    4,
    undefined,
  ], [5, "b5"]]);
});
