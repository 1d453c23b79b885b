/**
 * Restarts from what the disk holds, including a torn Ready: the entries of
 * a Ready reached the disk but its hard state did not.
 */

import assert from "node:assert/strict";
import { type CoreInitialState, RaftCore, type Ready } from "../../src/core/raft_core.ts";
import { encodeConfiguration } from "../../src/core/membership.ts";
import { type Entry, EntryType, type HardState } from "../../src/core/types.ts";
import { Cluster, TEST_OPTIONS, votersOf } from "./harness.ts";

function core(id: string, initial: CoreInitialState): RaftCore {
  return new RaftCore({ ...TEST_OPTIONS, id, random: () => 0 }, initial);
}

/** Persist `rd` fully (entries, then hard state) into `disk`. */
function persist(
  disk: { entries: Entry[]; hardState?: HardState },
  rd: Ready,
  withHardState = true,
): void {
  if (rd.entries.length > 0) {
    const first = rd.entries[0].index;
    disk.entries = disk.entries.filter((e) => e.index < first).concat(rd.entries);
  }
  if (withHardState && rd.hardState) disk.hardState = { ...rd.hardState };
}

Deno.test("torn Ready on a single voter: no leadership before its term is on disk", () => {
  const disk: { entries: Entry[]; hardState?: HardState } = { entries: [] };
  let n1 = core("n1", { entries: [] });
  n1.bootstrap(votersOf(["n1"]));
  let rd = n1.ready();
  persist(disk, rd);
  n1.advance(rd);
  // Tick until the Ready carrying its new term appears; the crash tears it
  // so the term never reaches the disk.
  let torn: Ready | undefined;
  const before = n1.term;
  for (let i = 0; i < 40 && !torn; i++) {
    n1.tick();
    while (n1.hasReady()) {
      rd = n1.ready();
      if (rd.hardState && rd.hardState.term > before) {
        torn = rd;
        break;
      }
      persist(disk, rd);
      n1.advance(rd);
    }
  }
  assert.ok(torn, "n1 started an election");
  assert.notEqual(n1.state, "leader", "a lone voter does not lead before its vote is durable");
  assert.equal(torn.entries.length, 0, "nothing of the new term was written");
  assert.ok(!torn.messages.some((m) => m.type === "append" || m.type === "heartbeat"));
  persist(disk, torn, false);
  assert.ok(disk.hardState!.term < n1.term, "the disk missed the new term");

  n1 = core("n1", { hardState: disk.hardState, entries: disk.entries });
  for (let i = 0; i < 40 && n1.state !== "leader"; i++) {
    n1.tick();
    while (n1.hasReady()) n1.advance(n1.ready());
  }
  assert.equal(n1.state, "leader");
  assert.equal(n1.termAt(n1.lastIndex), n1.term);
});

Deno.test("a log term newer than the stored term is adopted on restart, with no vote to give", () => {
  const disk: { entries: Entry[]; hardState?: HardState } = {
    entries: [
      {
        index: 1,
        term: 1,
        type: EntryType.Configuration,
        data: encodeConfiguration(votersOf(["n1"])),
      },
      { index: 2, term: 3, type: EntryType.Noop, data: new Uint8Array() },
    ],
    hardState: { term: 2, vote: "n1", commit: 1 },
  };
  const n1 = core("n1", { hardState: disk.hardState, entries: disk.entries });
  assert.equal(n1.term, 3, "term restored from the log");
  assert.equal(n1.vote, "n1", "and no vote left to give in that term");
  for (let i = 0; i < 40 && n1.state !== "leader"; i++) {
    n1.tick();
    while (n1.hasReady()) n1.advance(n1.ready());
  }
  assert.equal(n1.state, "leader");
  assert.ok(n1.term > 3, `leads a new term ${n1.term}, not 3 again`);
});

Deno.test("torn Ready on a follower: term restored, no vote granted in that term", () => {
  const conf = votersOf(["n1", "n2", "n3"]);
  const entries: Entry[] = [
    { index: 1, term: 1, type: EntryType.Configuration, data: encodeConfiguration(conf) },
    { index: 2, term: 5, type: EntryType.Noop, data: new Uint8Array() },
  ];
  // The disk holds an entry of term 5 but the hard state still says term 4.
  const n2 = core("n2", { hardState: { term: 4, vote: "", commit: 1 }, entries });
  assert.equal(n2.term, 5);
  for (let i = 0; i < 20; i++) n2.tick(); // past the quiet period after a start
  n2.step({
    type: "vote",
    term: 5,
    from: "n3",
    to: "n2",
    lastLogIndex: 9,
    lastLogTerm: 5,
    preVote: false,
    leadershipTransfer: false,
  });
  const rd = n2.ready();
  assert.ok(rd.hardState && rd.hardState.term === 5, "the restored term is written back");
  n2.advance(rd);
  const replies = n2.ready().messages.filter((m) => m.type === "vote_resp");
  assert.equal(replies.length, 1);
  assert.equal(
    replies[0].type === "vote_resp" && replies[0].granted,
    false,
    "no second vote in term 5",
  );
});

Deno.test("restart from snapshot and trailing log: applies from the snapshot on, knows the commit", () => {
  const conf = votersOf(["n1", "n2", "n3"]);
  const entries: Entry[] = [];
  for (let i = 8; i <= 15; i++) {
    entries.push({ index: i, term: 2, type: EntryType.Normal, data: new Uint8Array([i]) });
  }
  const n1 = core("n1", {
    hardState: { term: 2, vote: "n1", commit: 13 },
    snapshot: { index: 10, term: 2, configuration: conf, configurationIndex: 1 },
    entries,
  });
  assert.equal(n1.appliedIndex, 10);
  assert.equal(n1.commitIndex, 13);
  assert.equal(n1.lastIndex, 15);
  const rd = n1.ready();
  assert.deepEqual(rd.committed.map((e) => e.index), [11, 12, 13]);
  assert.equal(n1.termAt(10), 2);
});

Deno.test("a single voter leads, and sends, only once its new term is durable", () => {
  const conf = {
    servers: [
      { id: "n1", address: "a1", suffrage: "voter" as const },
      { id: "n2", address: "a2", suffrage: "nonvoter" as const },
    ],
  };
  const n1 = core("n1", { entries: [] });
  n1.bootstrap(conf);
  n1.advance(n1.ready());
  let termReady: Ready | undefined;
  const before = n1.term;
  for (let i = 0; i < 40 && !termReady; i++) {
    n1.tick();
    while (n1.hasReady()) {
      const rd = n1.ready();
      if (rd.hardState && rd.hardState.term > before) {
        termReady = rd;
        break;
      }
      n1.advance(rd);
    }
  }
  assert.ok(termReady, "n1 started an election");
  assert.ok(termReady.mustSync);
  assert.equal(n1.state, "candidate", "not leader while its vote is not on disk");
  assert.throws(() => n1.propose([new Uint8Array([1])]));
  assert.deepEqual(termReady.messages, [], "no append or heartbeat before the term is on disk");
  n1.advance(termReady);
  assert.equal(n1.state, "leader", "leader once that Ready is advanced");
  n1.propose([new Uint8Array([1])]);
  const sent = n1.ready().messages;
  assert.ok(sent.some((m) => m.type === "append" && m.to === "n2"), "and it replicates");
});

Deno.test("a single voter whose disk stalls does not lead, so a crash cannot fork a non-voter's log", () => {
  const conf = {
    servers: [
      { id: "n1", address: "a1", suffrage: "voter" as const },
      { id: "n2", address: "a2", suffrage: "nonvoter" as const },
    ],
  };
  const c = new Cluster();
  c.add("n1", { entries: [] }).core.bootstrap(conf);
  c.add("n2", { entries: [] });
  c.elect("n1");
  c.propose("n1", "a");
  assert.deepEqual(c.node("n2").applied, ["a"]);
  // n1's disk stalls and it restarts: its new term never becomes durable,
  // so it must not lead (a proposal there could be forgotten and its index
  // reused under the same term after the next crash).
  c.node("n1").stalled = true;
  c.crash("n1").stalled = true;
  assert.throws(() => c.elect("n1", 100), /did not become leader/);
  c.crash("n1");
  c.elect("n1");
  c.propose("n1", "c");
  c.tick(3);
  assert.deepEqual(c.node("n1").applied, ["a", "c"]);
  assert.deepEqual(c.node("n2").applied, ["a", "c"], "n2 holds the same log");
});
