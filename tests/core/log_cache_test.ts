/**
 * The core's bounded log cache: entries older than the cache are read back
 * from storage (`Ready.loads`) to catch followers up and to apply, memory
 * stays bounded while the log grows, and a read that answers after the log
 * moved on (truncation, compaction, snapshot install, leadership change) is
 * checked and dropped.
 */

import assert from "node:assert/strict";
import { ENTRY_OVERHEAD_BYTES, RaftLog } from "../../src/core/log.ts";
import { type Entry, EntryType } from "../../src/core/types.ts";
import fc from "fast-check";
import { Cluster, payload } from "./harness.ts";

const SMALL_CACHE = { maxCacheBytes: 10 * (16 + ENTRY_OVERHEAD_BYTES) }; // ~10 entries

function entry(index: number, term: number, body = `${index}/${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: payload(body) };
}

function proposeMany(c: Cluster, leader: string, count: number, tag: string): void {
  for (let i = 0; i < count; i++) {
    c.core(leader).propose([payload(`${tag}-${String(i).padStart(8, "0")}`)]);
    if (i % 7 === 0) c.stabilize();
  }
  c.stabilize();
  c.tick(1);
}

Deno.test("memory: the entries a core holds stay bounded while the log grows", () => {
  const c = Cluster.bootstrap(["n1", "n2", "n3"], SMALL_CACHE);
  c.elect("n1");
  const budget = SMALL_CACHE.maxCacheBytes;
  for (let round = 0; round < 30; round++) {
    proposeMany(c, "n1", 100, `r${round}`);
    for (const id of ["n1", "n2", "n3"]) {
      const use = c.core(id).memoryUse();
      // Storage is synchronous here: nothing is waiting to become durable.
      assert.ok(use.bytes <= budget, `${id} holds ${use.bytes} bytes (budget ${budget})`);
      assert.ok(use.entries <= 10, `${id} holds ${use.entries} entries`);
      assert.equal(use.termRuns, 2, `${id}: one run per term`);
    }
  }
  assert.equal(c.core("n1").lastIndex, 3002); // configuration, no-op, 3000 writes
  for (const id of ["n2", "n3"]) {
    assert.equal(c.node(id).appliedIndex, 3002);
    assert.equal(c.node(id).applied.length, 3000);
    // Followers keep nothing they already applied.
    assert.equal(c.core(id).memoryUse().entries, 0, `${id} holds applied entries`);
  }
});

Deno.test("memory: an unbounded cache keeps every entry (no loads)", () => {
  const c = Cluster.bootstrap(["n1", "n2", "n3"]);
  c.elect("n1");
  proposeMany(c, "n1", 200, "x");
  assert.equal(c.core("n2").memoryUse().entries, c.core("n2").lastIndex);
  assert.equal(c.node("n1").loadsAsked, 0);
});

Deno.test("a leader catches up a lagging follower from storage, in order", () => {
  const c = Cluster.bootstrap(["n1", "n2", "n3"], SMALL_CACHE);
  c.elect("n1");
  c.isolate("n3");
  proposeMany(c, "n1", 300, "lag");
  assert.ok(c.core("n3").lastIndex < 10);
  const asked = c.node("n1").loadsAsked;
  c.heal();
  c.tick(30);
  assert.ok(c.node("n1").loadsAsked > asked, "the leader read old entries back");
  assert.equal(c.core("n3").lastIndex, c.core("n1").lastIndex);
  assert.deepEqual(c.terms("n3"), c.terms("n1"));
  assert.deepEqual(c.node("n3").applied, c.node("n1").applied);
  assert.equal(c.node("n3").applied.length, 300);
});

Deno.test("a restarted follower applies its committed backlog from storage", () => {
  const c = Cluster.bootstrap(["n1", "n2", "n3"], { ...SMALL_CACHE, maxApplyBytes: 500 });
  c.elect("n1");
  proposeMany(c, "n1", 120, "w");
  const n2 = c.crash("n2");
  assert.equal(n2.appliedIndex, 0);
  assert.ok(n2.core.commitIndex > 100, "the commit hint survived");
  assert.ok(n2.core.memoryUse().entries <= 10, "the restart did not load the whole log");
  c.stabilize();
  assert.equal(n2.appliedIndex, n2.core.commitIndex);
  assert.deepEqual(n2.applied, c.node("n1").applied.slice(0, n2.applied.length));
  assert.ok(n2.loadsAsked > 0);
});

Deno.test("flow control: no more than maxApplyBytes waits to be applied", () => {
  const c = Cluster.bootstrap(["n1"], { maxApplyBytes: 3 * (8 + ENTRY_OVERHEAD_BYTES) });
  c.elect("n1");
  const core = c.core("n1");
  // Hand out without acknowledging: take Readies by hand.
  core.propose(Array.from({ length: 20 }, (_, i) => payload(`e${String(i).padStart(6)}`)));
  let handedOut = 0;
  let loops = 0;
  while (core.hasReady() && loops++ < 50) {
    const rd = core.ready();
    handedOut += rd.committed.length;
    core.advance(rd);
  }
  assert.ok(handedOut > 0 && handedOut <= 3, `handed out ${handedOut} before any ack`);
  assert.equal(core.appliedTo(core.appliedIndex), true, "acknowledging frees room");
  const rd = core.ready();
  assert.ok(rd.committed.length > 0);
  assert.equal(rd.committed[0].index, core.appliedIndex - rd.committed.length + 1);
});

Deno.test("a load answered with entries a truncation replaced is dropped", () => {
  const log = new RaftLog(0, 0, 0);
  log.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
  log.takeUnstable();
  log.stableTo(3, 1);
  const stale = [entry(2, 1), entry(3, 1)];
  // A new leader's entries replace 3 (uncommitted).
  log.append([entry(3, 2), entry(4, 2)]);
  assert.equal(log.matchingPrefix(2, stale), 1, "2/1 still stands, 3/1 was replaced");
  assert.equal(log.matchingPrefix(1, stale), 0, "indexes must follow on from lo");
  log.takeUnstable();
  log.stableTo(4, 2);
  log.committed = 4;
  log.applied = 4;
  log.compact(3);
  assert.equal(log.matchingPrefix(2, stale), 0, "compacted away");
  assert.equal(log.matchingPrefix(4, [entry(4, 2)]), 1);
});

Deno.test("a load that answers after compaction sends nothing stale; the follower gets a snapshot", () => {
  const c = Cluster.bootstrap(["n1", "n2", "n3"], SMALL_CACHE);
  c.elect("n1");
  c.isolate("n3");
  proposeMany(c, "n1", 60, "a");
  c.node("n1").loadMode = "manual";
  c.heal();
  for (let i = 0; i < 20 && c.node("n1").loads.length === 0; i++) c.tick(1);
  assert.equal(c.node("n1").loads.length, 1, "n1 asks for n3's entries");
  const load = c.node("n1").loads[0];
  const stale = c.node("n1").disk.entries.filter((e) => e.index >= load.lo && e.index <= load.hi);
  // Meanwhile n1 snapshots and compacts past what it asked for.
  c.snapshot("n1");
  c.answerLoad("n1", stale);
  c.node("n1").loadMode = "auto";
  const appendsWith = () =>
    c.queue.filter((m) =>
      m.type === "append" && m.to === "n3" && m.entries.some((e) => e.index <= load.hi)
    ).length;
  assert.equal(appendsWith(), 0, "no append of compacted entries");
  c.tick(20);
  assert.equal(c.node("n3").installs.length, 1, "n3 installed the snapshot instead");
  assert.equal(c.core("n3").lastIndex, c.core("n1").lastIndex);
  assert.deepEqual(c.node("n3").applied, c.node("n1").applied);
});

Deno.test("a load answered after leadership moved is ignored", () => {
  const c = Cluster.bootstrap(["n1", "n2", "n3"], SMALL_CACHE);
  c.elect("n1");
  c.isolate("n3");
  proposeMany(c, "n1", 40, "b");
  c.node("n1").loadMode = "manual";
  c.heal();
  for (let i = 0; i < 20 && c.node("n1").loads.length === 0; i++) c.tick(1);
  assert.equal(c.node("n1").loads.length, 1);
  c.isolate("n1");
  c.elect("n2");
  c.heal();
  c.tick(3);
  assert.equal(c.core("n1").state, "follower");
  c.queue = [];
  c.answerLoad("n1");
  c.flush();
  assert.equal(c.queue.filter((m) => m.from === "n1" && m.type === "append").length, 0);
  c.node("n1").loadMode = "auto";
  c.tick(20);
  assert.equal(c.core("n3").lastIndex, c.core("n2").lastIndex);
  assert.deepEqual(c.node("n3").applied, c.node("n2").applied);
});

Deno.test("an apply load answered after a snapshot install is dropped, nothing applies twice", () => {
  const c = Cluster.bootstrap(["n1", "n2", "n3"], SMALL_CACHE);
  c.elect("n1");
  proposeMany(c, "n1", 50, "c");
  // n3 restarts with a committed backlog to apply from its disk, reads held back.
  const n3 = c.crash("n3");
  n3.loadMode = "manual";
  c.isolate("n3");
  c.flush();
  assert.equal(n3.loads.length, 1, "n3 asks for its committed entries");
  const pending = n3.loads[0];
  const stale = n3.disk.entries.filter((e) => e.index >= pending.lo && e.index <= pending.hi);
  // The cluster moves on and compacts; n3 gets a snapshot instead.
  proposeMany(c, "n1", 30, "d");
  c.snapshot("n1");
  c.heal();
  for (let i = 0; i < 30 && n3.installs.length === 0; i++) {
    // Deliver everything but hold n3's reads.
    c.tick(1);
  }
  assert.equal(n3.installs.length, 1);
  n3.loads = [pending];
  c.answerLoad("n3", stale); // throws in the harness if anything applies out of order
  n3.loadMode = "auto";
  c.tick(10);
  assert.equal(n3.appliedIndex, c.node("n1").appliedIndex);
  assert.deepEqual(n3.applied.slice(-30), c.node("n1").applied.slice(-30));
});

Deno.test("RaftLog: the entries in memory are always the newest, contiguous, within budget once durable", () => {
  const opArb = fc.oneof(
    fc.record({
      kind: fc.constant("append" as const),
      back: fc.nat({ max: 6 }),
      count: fc.integer({ min: 1, max: 40 }),
    }),
    fc.record({ kind: fc.constant("persist" as const) }),
    fc.record({ kind: fc.constant("commit" as const), ahead: fc.nat({ max: 30 }) }),
    fc.record({ kind: fc.constant("apply" as const), max: fc.integer({ min: 1, max: 30 }) }),
    fc.record({ kind: fc.constant("compact" as const), back: fc.nat({ max: 10 }) }),
    fc.record({ kind: fc.constant("lead" as const), keep: fc.boolean() }),
  );
  fc.assert(
    fc.property(
      fc.array(opArb, { maxLength: 80 }),
      fc.integer({ min: 0, max: 3000 }),
      (ops, cache) => {
        const log = new RaftLog(0, 0, cache);
        let term = 1;
        for (const op of ops) {
          if (op.kind === "append") {
            const first = Math.max(log.committed + 1, log.lastIndex() + 1 - op.back);
            term++;
            log.append(Array.from({ length: op.count }, (_, k) => entry(first + k, term)));
          } else if (op.kind === "persist") {
            const unstable = log.takeUnstable();
            if (unstable.length > 0) log.stableTo(unstable.at(-1)!.index, unstable.at(-1)!.term);
          } else if (op.kind === "commit") {
            log.commitTo(Math.min(log.stableIndex, log.committed + op.ahead));
          } else if (op.kind === "apply") {
            if (log.nextCommittedInMemory()) log.takeCommitted(op.max);
            else if (log.hasCommitted()) {
              log.handedOut(
                Math.min(log.committed, log.applied + op.max),
              );
            }
          } else if (op.kind === "compact") {
            log.compact(log.applied - op.back);
          } else {
            log.keepApplied = op.keep;
          }
          const lo = log.firstInMemory();
          assert.ok(lo >= log.firstIndex() && lo <= log.stableIndex + 1, `window starts at ${lo}`);
          let bytes = 0;
          for (let i = lo; i <= log.lastIndex(); i++) {
            const e = log.entry(i);
            assert.ok(e !== undefined && e.index === i && e.term === log.term(i), `entry ${i}`);
            bytes += e.data.byteLength + ENTRY_OVERHEAD_BYTES;
          }
          assert.equal(log.entry(lo - 1), undefined);
          assert.equal(log.heldBytes, bytes);
          assert.equal(log.heldEntries, log.lastIndex() - lo + 1);
          // Over budget only when everything held is not yet durable.
          if (bytes > cache) assert.ok(lo > log.stableIndex, `${bytes} bytes held, cache ${cache}`);
        }
      },
    ),
  );
});

Deno.test("RaftLog: a window that grew large and drained shrinks and still wraps correctly", () => {
  const log = new RaftLog(0, 0, 0);
  let next = 1;
  for (let round = 1; round <= 3; round++) {
    const batch = Array.from({ length: 5000 }, (_, k) => entry(next + k, round));
    log.append(batch);
    next += batch.length;
    for (let i = log.firstInMemory(); i <= log.lastIndex(); i += 997) {
      assert.equal(log.entry(i)?.index, i);
    }
    const unstable = log.takeUnstable();
    assert.equal(unstable.length, 5000);
    // Durable bit by bit: the ring drains from the front while it wraps.
    for (let k = 99; k < unstable.length; k += 100) log.stableTo(unstable[k].index, round);
    assert.equal(log.heldEntries, 0);
    assert.equal(log.firstInMemory(), next);
  }
  log.append([entry(next, 4)]);
  assert.equal(log.entry(next)?.term, 4);
});
