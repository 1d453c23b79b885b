/**
 * The Raft paper's Figure 8: a leader must not commit an entry of an earlier
 * term by counting replicas, because a later leader may still overwrite it.
 * Only once an entry of its own term is on a majority do the earlier entries
 * commit with it (§5.4.2).
 */

import assert from "node:assert/strict";
import type { Message } from "../../src/core/types.ts";
import { Cluster, logOf } from "./harness.ts";

const IDS = ["s1", "s2", "s3", "s4", "s5"];

/** State (c) of Figure 8: s1 holds 2@2 (also on s2), s5 holds 2@3. */
function figure8(): Cluster {
  const c = new Cluster();
  const logs: Record<string, number[]> = {
    s1: [1, 2],
    s2: [1, 2],
    s3: [1],
    s4: [1],
    s5: [1, 3],
  };
  for (const id of IDS) {
    c.add(id, { hardState: { term: 3, vote: "", commit: 1 }, entries: logOf(IDS, logs[id]) });
  }
  return c;
}

/**
 * State (c) → (d) of the figure: s1's appends reach only s2 and s3, and carry
 * only entries below `limit` (its own entry of term 4 never gets out).
 */
function onlyBelow(limit: number): (m: Message) => Message | undefined {
  return (m) => {
    if (m.type !== "append") return m;
    if (m.to === "s4" || m.to === "s5") return undefined;
    return { ...m, entries: m.entries.filter((e) => e.index < limit) };
  };
}

Deno.test("figure 8: a leader does not commit an entry of an earlier term held by a majority", () => {
  const c = figure8();
  c.transform = onlyBelow(3);
  c.elect("s1");
  assert.equal(c.core("s1").term, 4);
  c.tick(5);
  // 2@2 is now on s1, s2 and s3: a majority of five. It must not count as committed.
  for (const id of ["s1", "s2", "s3"]) assert.equal(c.core(id).termAt(2), 2, `${id} holds 2@2`);
  for (const id of IDS) assert.equal(c.core(id).commitIndex, 1, `commit index of ${id}`);
  assert.equal(c.core("s1").committedInCurrentTerm(), false);
});

Deno.test("figure 8: which is right, since s5 can still win and overwrite index 2", () => {
  const c = figure8();
  c.transform = onlyBelow(3);
  c.elect("s1");
  c.tick(5);
  // s1 crashes (is cut off); s5's last term (3) beats 2@2, so s2, s3 and s4 vote for it.
  c.transform = undefined;
  c.isolate("s1");
  c.elect("s5");
  assert.ok(c.core("s5").term > 4);
  c.tick(3);
  for (const id of ["s2", "s3", "s4", "s5"]) {
    assert.equal(c.core(id).termAt(2), 3, `${id} has 2@3`);
    assert.ok(c.core(id).commitIndex >= 2, `${id} committed index 2`);
  }
});

Deno.test("figure 8: once the leader's own entry reaches a majority, the earlier one commits with it", () => {
  const c = figure8();
  c.elect("s1");
  c.tick(3);
  for (const id of IDS) {
    assert.equal(c.core(id).termAt(2), 2, `${id} holds 2@2`);
    assert.equal(c.core(id).commitIndex, 3, `commit index of ${id}`);
  }
});
