/**
 * The Raft paper's Figure 7: when the leader of term 8 comes to power, the
 * followers' logs differ from its own in every way a log can (missing
 * entries, extra uncommitted entries, both). The leader must bring each of
 * them to exactly its own log.
 */

import assert from "node:assert/strict";
import { Cluster, logOf } from "./harness.ts";

const IDS = ["leader", "a", "b", "c", "d", "e", "f"];

/** Terms of each log, index 1 first (Figure 7 of the paper). */
const LOGS: Record<string, number[]> = {
  leader: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6],
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};

function figure7(): Cluster {
  const c = new Cluster();
  for (const id of IDS) {
    c.add(id, { hardState: { term: 7, vote: "", commit: 1 }, entries: logOf(IDS, LOGS[id]) });
  }
  return c;
}

Deno.test("figure 7: the leader of term 8 wins with the votes of a, b, e, f", () => {
  const c = figure7();
  c.elect("leader");
  assert.equal(c.core("leader").term, 8);
  assert.deepEqual(c.leaders(), ["leader"]);
});

Deno.test("figure 7: every divergent follower ends with exactly the leader's log", () => {
  const c = figure7();
  c.elect("leader");
  c.tick(5);
  const expected = [...LOGS.leader, 8]; // the leader's no-op of term 8 at index 11
  assert.deepEqual(c.terms("leader"), expected);
  const leader = c.core("leader");
  for (const id of IDS) {
    const core = c.core(id);
    assert.deepEqual(c.terms(id), expected, `log of ${id}`);
    for (let i = 1; i <= leader.lastIndex; i++) {
      assert.deepEqual(core.entryAt(i), leader.entryAt(i), `entry ${i} of ${id}`);
    }
    assert.equal(core.commitIndex, 11, `commit index of ${id}`);
    assert.equal(core.state, id === "leader" ? "leader" : "follower");
    // What each node applied is the leader's history, nothing of the overwritten entries.
    assert.deepEqual(c.node(id).applied, [
      "2/1",
      "3/1",
      "4/4",
      "5/4",
      "6/5",
      "7/5",
      "8/6",
      "9/6",
      "10/6",
    ]);
  }
});

Deno.test("figure 7: c's and d's extra entries of terms 6 and 7 are gone from their disks too", () => {
  const c = figure7();
  c.elect("leader");
  c.tick(3);
  for (const id of ["c", "d"]) {
    const disk = c.node(id).disk.entries;
    assert.deepEqual(disk.map((e) => e.term), [...LOGS.leader, 8], `disk of ${id}`);
  }
});
