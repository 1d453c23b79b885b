/**
 * Messages a stranger (or a broken peer) can forge that are well formed and
 * pass the codec but lie: the core must not act on them.
 */

import assert from "node:assert/strict";
import { FREE_TERM_LIMIT, MAX_TERM, MAX_TERM_STEP, mayAdoptTerm } from "../../src/core/limits.ts";
import { Cluster } from "./harness.ts";

const THREE = ["n1", "n2", "n3"];

Deno.test("an append_resp claiming entries the leader never wrote commits nothing", () => {
  const c = Cluster.bootstrap(THREE);
  c.elect("n1");
  c.isolate("n2");
  c.isolate("n3");
  const before = c.core("n1").commitIndex;
  c.core("n1").propose([new TextEncoder().encode("lost?")]);
  c.flush();
  const n1 = c.core("n1");
  const term = n1.term;
  for (const from of ["n2", "n3"]) {
    n1.step({
      type: "append_resp",
      term,
      from,
      to: "n1",
      success: true,
      index: 1_000_000,
      hintIndex: 0,
      hintTerm: 0,
    });
  }
  c.flush();
  assert.equal(n1.commitIndex, before, "no quorum stores the entry: it must not commit");
  // An honest answer still counts.
  n1.step({
    type: "append_resp",
    term,
    from: "n2",
    to: "n1",
    success: true,
    index: n1.lastIndex,
    hintIndex: 0,
    hintTerm: 0,
  });
  c.flush();
  assert.equal(n1.commitIndex, n1.lastIndex);
});

Deno.test("a heartbeat_resp for a round not sent yet confirms no read", () => {
  const c = Cluster.bootstrap(THREE);
  c.elect("n1");
  c.propose("n1", "x");
  c.isolate("n2");
  c.isolate("n3");
  const n1 = c.core("n1");
  n1.readIndex(7);
  c.flush();
  for (const from of ["n2", "n3"]) {
    n1.step({ type: "heartbeat_resp", term: n1.term, from, to: "n1", context: 1e12 });
  }
  c.flush();
  assert.deepEqual(c.node("n1").readStates, [], "a read confirmed by nobody must wait");
});

Deno.test("TimeoutNow from anyone but the leader of the term is ignored", () => {
  const c = Cluster.bootstrap(THREE);
  c.elect("n1");
  const n2 = c.core("n2");
  const term = n2.term;
  for (const from of ["n3", "stranger"]) {
    n2.step({ type: "timeout_now", term, from, to: "n2" });
    c.flush();
    assert.equal(n2.state, "follower", `TimeoutNow from ${from}`);
    assert.equal(n2.term, term);
  }
  // From the leader it still starts an election at once.
  n2.step({ type: "timeout_now", term, from: "n1", to: "n2" });
  c.flush();
  assert.equal(n2.state, "candidate");
  assert.equal(n2.term, term + 1);
});

Deno.test("appends, heartbeats and snapshots from a second leader of the same term are ignored", () => {
  const c = Cluster.bootstrap(THREE);
  c.elect("n1");
  c.propose("n1", "a");
  const n2 = c.core("n2");
  const term = n2.term;
  const last = n2.lastIndex;
  n2.step({
    type: "append",
    term,
    from: "intruder",
    to: "n2",
    prevIndex: last,
    prevTerm: n2.termAt(last)!,
    commit: last + 1,
    entries: [{ index: last + 1, term, type: 0, data: new TextEncoder().encode("forged") }],
  });
  n2.step({ type: "heartbeat", term, from: "n3", to: "n2", commit: last, context: 1 });
  n2.step({
    type: "snapshot",
    term,
    from: "intruder",
    to: "n2",
    meta: {
      index: last + 10,
      term,
      configurationIndex: 1,
      configuration: { servers: [{ id: "intruder", address: "x:1", suffrage: "voter" }] },
    },
  });
  c.flush();
  assert.equal(n2.lastIndex, last, "nothing appended or installed");
  assert.equal(n2.leader, "n1");
  assert.equal(c.queue.filter((m) => m.to === "intruder" || m.to === "n3").length, 0);
});

Deno.test("a term far ahead is not adopted; terms stop at MAX_TERM", () => {
  assert.ok(mayAdoptTerm(0, FREE_TERM_LIMIT + MAX_TERM_STEP));
  assert.ok(!mayAdoptTerm(0, FREE_TERM_LIMIT + MAX_TERM_STEP + 1));
  assert.ok(mayAdoptTerm(MAX_TERM - 1, MAX_TERM));
  assert.ok(!mayAdoptTerm(MAX_TERM, MAX_TERM + 1));

  const c = Cluster.bootstrap(THREE);
  c.elect("n1");
  for (const id of THREE) {
    c.core(id).step({
      type: "heartbeat",
      term: 2 ** 53 - 1,
      from: "stranger",
      to: id,
      commit: 0,
      context: 0,
    });
  }
  c.flush();
  assert.ok(THREE.every((id) => c.core(id).term < 100), "the forged term was not adopted");
  c.propose("n1", "still works");
  assert.equal(c.core("n3").commitIndex, c.core("n1").lastIndex);

  // A forged term within reach is adopted (a real leader could be there):
  // the cluster then still elects a leader above it.
  const high = FREE_TERM_LIMIT + MAX_TERM_STEP;
  for (const id of THREE) {
    c.core(id).step({
      type: "heartbeat",
      term: high,
      from: "stranger",
      to: id,
      commit: 0,
      context: 0,
    });
  }
  c.flush();
  c.deliver();
  c.flush();
  c.elect("n2");
  assert.ok(c.core("n2").term > high);
  c.propose("n2", "after");
  assert.equal(c.core("n3").commitIndex, c.core("n2").lastIndex);
});
