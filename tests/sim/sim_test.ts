/**
 * The whole-node simulation: a thousand seeded runs of 3 and 5 node clusters
 * of real `Raft` nodes must violate nothing; a seed replays exactly; the runs
 * exercise every fault and operation they claim to; and planted bugs (in the
 * core, the disk, the read path) are caught, so the checks can fail.
 */

import assert from "node:assert/strict";
import { RaftCore } from "../../src/core/raft_core.ts";
import type { Message } from "../../src/core/types.ts";
import { EntryType } from "../../src/core/types.ts";
import { Checker, type LogView } from "./checker.ts";
import { runSimulation, type SimOptions, type SimParams } from "./simulation.ts";

const CLI = new URL("./cli.ts", import.meta.url).pathname;

async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

Deno.test("1000 seeds of 3 and 5 node clusters of real nodes violate nothing", async () => {
  // Seeds 1..1000 in two workers; the long runs and other ranges are for `deno task sim`.
  const r = await runCli(["--seeds", "1000", "--seed-start", "1", "--workers", "2"]);
  const json = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(json.seeds, 1000);
  assert.equal(json.violations, 0, r.stderr);
  assert.ok(json.client_ops > 100_000, `client_ops ${json.client_ops}`);
});

/** Run seeds with `options` until one fails; returns its violation. */
async function firstViolation(
  options: Partial<SimOptions>,
  seeds: Iterable<number>,
): Promise<string | undefined> {
  for (const seed of seeds) {
    const r = await runSimulation({ ...options, seed });
    if (r.violation !== undefined) return r.violation;
  }
  return undefined;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

Deno.test("the runs exercise what they claim: faults, operations, snapshots, churn", async () => {
  const totals: Record<string, number> = {};
  let ops = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const r = await runSimulation({ seed });
    assert.equal(r.violation, undefined, `seed ${seed}: ${r.violation}`);
    ops += r.clientOps;
    for (const [k, v] of Object.entries(r.stats)) totals[k] = (totals[k] ?? 0) + v;
  }
  for (
    const k of [
      "elections",
      "writesOk",
      "writesUnknown",
      "writesFailed",
      "readsOk",
      "leaseReads",
      "restores",
      "snapshots",
      "membershipChanges",
      "transfers",
      "verified",
      "aborts",
      "clientTimeouts",
      "crashes",
      "powerLosses",
      "shutdowns",
      "pauses",
      "stalls",
      "partitions",
      "diskFaults",
      "slowDisks",
      "selfStops",
      "tornWrites",
      "fsmRestores",
    ]
  ) {
    assert.ok(totals[k] > 0, `no ${k} in 40 seeds: ${JSON.stringify(totals)}`);
  }
  assert.ok(ops > 4000, `client ops ${ops}`);
});

Deno.test("a seed replays exactly, event for event", async () => {
  const run = async (seed: number) => {
    const lines: string[] = [];
    const r = await runSimulation({ seed, steps: 80, trace: (l) => lines.push(l) });
    return { lines, r };
  };
  const a = await run(7);
  const b = await run(7);
  assert.ok(a.lines.length > 20, `${a.lines.length} trace lines`);
  assert.deepEqual(a.lines, b.lines);
  assert.deepEqual(a.r, b.r);
  assert.notDeepEqual((await run(8)).lines, a.lines);
});

Deno.test("planted: reads served from the local state machine without a read index are caught", async () => {
  const v = await firstViolation({ plant: { staleReads: true } }, range(1, 40));
  assert.match(v ?? "", /^linearizability: the history of key/);
});

Deno.test("planted: disks whose fsync returns before the data is durable are caught", async () => {
  const v = await firstViolation({ plant: { lyingDisks: true } }, range(1, 100));
  assert.ok(v !== undefined, "no violation found");
});

/** Run `fn` with `RaftCore.prototype[name]` replaced; restore it after. */
async function withCore<K extends "step" | "tick">(
  name: K,
  replacement: (original: RaftCore[K]) => RaftCore[K],
  fn: () => Promise<void>,
): Promise<void> {
  const original = RaftCore.prototype[name];
  RaftCore.prototype[name] = replacement(original);
  try {
    await fn();
  } finally {
    RaftCore.prototype[name] = original;
  }
}

Deno.test("planted: a core that votes without checking the candidate's log is caught", async () => {
  await withCore("step", (step) =>
    function (this: RaftCore, m: Message) {
      // Every vote request claims an unbeatable log, so stale candidates win.
      step.call(this, m.type === "vote" ? { ...m, lastLogIndex: 1e9, lastLogTerm: 1e6 } : m);
    }, async () => {
    const v = await firstViolation({}, range(1, 60));
    assert.match(v ?? "", /leader completeness|state machine safety|log matching|linearizability/);
  });
});

Deno.test("planted: a cluster that never elects a leader fails the liveness check", async () => {
  await withCore("tick", () => function () {}, async () => {
    const r = await runSimulation({ seed: 3, steps: 20, healSteps: 30 });
    assert.match(r.violation ?? "", /^liveness: .*no leader/);
  });
});

Deno.test("seeds that found bugs run clean", async () => {
  const seeds = [
    // restore() installed the user's snapshot on the leader before any
    // follower held it; the leader crashed half way and restarted from it as
    // if committed, at an index the next leader filled with other entries
    // (the two rejected each other's appends forever). Seed 226 too (in 1..1000).
    2469,
    // As 103162 below.
    102237,
    // A follower accepted a snapshot, then a newer one, and the store, which
    // keeps its newest snapshots only, dropped the first before its queued
    // install read it: the node stopped itself ("snapshot 2-87 is not in the
    // snapshot store").
    103162,
    // Pre-vote off: two servers with stale logs campaigned in turn, and each
    // of their vote requests restarted the others' election timers; no
    // leader for the 30 s after healing.
    108867,
  ];
  for (const seed of seeds) {
    const r = await runSimulation({ seed });
    assert.equal(r.violation, undefined, `seed ${seed}: ${r.violation}`);
  }
  // At 3000 steps: a voter added back while it was down restarted, replayed
  // its removal, ignored votes for an election timeout (as any restarted
  // server) and shut down (shutdownOnRemove) one election timeout after
  // starting, before it could vote; the two-voter configuration that listed
  // it never elected a leader after healing.
  const long = await runSimulation({ seed: 30001198, steps: 3000 });
  assert.equal(long.violation, undefined, `seed 30001198: ${long.violation}`);
  // A false alarm of the transfer check: n3 won term 120 and stopped on a
  // disk fault in the same event, so the check after each event never saw
  // it lead; its heartbeats had reached n2, whose transfer then ended.
  // Leaders are now recorded as their state changes.
  const seen = await runSimulation({ seed: 60000261, steps: 3000 });
  assert.equal(seen.violation, undefined, `seed 60000261: ${seen.violation}`);
  // A transfer asked for just before shutdown() answered only when the
  // shutdown, waiting for a slow disk, ended (ShutdownError a second past
  // its 465 and 401 ms timeouts): the deadlines swept meanwhile left out
  // transfers'.
  // 91002662: shutdown() cancelled a tick that was all but due and swept
  // deadlines first a tick later: a barrier ended 138 ms past its timeout.
  // 93002554: a member restarted at healing 3075 entries behind, with one
  // entry per append and two in flight, caught up at 2.2 entries a step on
  // a slow disk, where the allowance assumed 3 (two appends per fsync).
  // 93002905 (5 nodes): the check of key k0 (7407 operations, 194 open) ran
  // out of budget after minutes; it is linearizable, found on the history
  // as recorded once the pruned one runs out.
  for (const seed of [57487223, 57487462, 91002662, 93002554, 93002905]) {
    const r = await runSimulation({ seed, steps: 3000 });
    assert.equal(r.violation, undefined, `seed ${seed}: ${r.violation}`);
  }
  // Bootstrap. 70003813: n1's disk was slow to open; between Raft.create and
  // bootstrapCluster n5's vote request gave it term 2, and the bootstrap
  // then refused ("node already has state"): the founding server could
  // never start. 70003656: every machine lost power before the bootstrap
  // entry was on disk, and the restarts did not bootstrap again: no cluster
  // ever formed. Founders now pass `create`'s `bootstrap` option on every start.
  for (const seed of [70003813, 70003656]) {
    const r = await runSimulation({ seed });
    assert.equal(r.violation, undefined, `seed ${seed}: ${r.violation}`);
  }
});

Deno.test("long runs whose nodes all crash just before healing finish (issue 11, defect 7)", async () => {
  // On the simulator of the core, a power loss in the last chaotic steps
  // left every node down when the faults healed, and the catch-up allowance
  // was measured on no node at all (250 steps for a backlog of thousands of
  // entries): reported as liveness failures while the clusters were still
  // catching up. The issue asks that these four seeds pass at 3000 steps.
  for (const seed of [7100688, 7102126, 7102184, 7102979]) {
    const r = await runSimulation({ seed, steps: 3000 });
    assert.equal(r.violation, undefined, `seed ${seed}: ${r.violation}`);
  }
  // The same on the whole-node simulation: servers restarted when the faults
  // heal are still opening their stores when the allowance is measured, so
  // a member thousands of entries behind was given the bare 300 steps (it
  // catches up 635 steps after healing).
  const r = await runSimulation({ seed: 30001058, steps: 3000 });
  assert.equal(r.violation, undefined, `seed 30001058: ${r.violation}`);
});

Deno.test("checker: two leaders in one term", () => {
  const c = new Checker();
  c.leaderElected("n1", 3);
  c.leaderElected("n1", 3);
  assert.equal(c.violation, undefined);
  c.leaderElected("n2", 3);
  assert.match(c.violation ?? "", /election safety/);
});

Deno.test("checker: two different entries under one (index, term), or behind different terms", () => {
  const e = (index: number, term: number, byte: number) => ({
    index,
    term,
    type: EntryType.Normal,
    data: new Uint8Array([byte]),
  });
  const c = new Checker();
  c.entriesAppended("n1", 1, [e(2, 2, 1), e(3, 2, 1)]);
  c.entriesAppended("n2", 1, [e(2, 2, 1), e(3, 2, 1)]);
  assert.equal(c.violation, undefined);
  c.entriesAppended("n3", 1, [e(2, 2, 1), e(3, 2, 9)]);
  assert.match(c.violation ?? "", /log matching: n3 holds a different entry at index 3 term 2/);

  const d = new Checker();
  d.entriesAppended("n1", 1, [e(5, 3, 1)]);
  d.entriesAppended("n2", 2, [e(5, 3, 1)]);
  assert.match(d.violation ?? "", /follows term 2, elsewhere term 1/);
});

Deno.test("checker: two nodes applying or committing different entries at one index", () => {
  const c = new Checker();
  c.applied("n1", { index: 4, term: 2, type: EntryType.Normal, data: new Uint8Array([1]) });
  c.applied("n2", { index: 4, term: 2, type: EntryType.Normal, data: new Uint8Array([1]) });
  assert.equal(c.violation, undefined);
  c.applied("n3", { index: 4, term: 3, type: EntryType.Noop, data: new Uint8Array() });
  assert.match(c.violation ?? "", /state machine safety: n3 applied/);

  const d = new Checker();
  d.committed("n1", 7, 2, 2);
  d.committed("n2", 7, 2, 5);
  assert.equal(d.violation, undefined);
  d.committed("n3", 7, 3, 3);
  assert.match(d.violation ?? "", /state machine safety: n3 committed index 7 with term 3/);
});

Deno.test("checker: a leader missing an entry committed in an earlier term", () => {
  const view = (terms: Record<number, number>, compactedTo = 0): LogView => ({
    id: "n2",
    compactedTo,
    termAt: (i) => terms[i],
  });
  const c = new Checker();
  c.committed("n1", 1, 1, 1);
  c.committed("n1", 2, 2, 2);
  c.leaderCompleteness(view({ 1: 1, 2: 2 }), 3, 2);
  assert.equal(c.violation, undefined);
  c.leaderCompleteness(view({}, 2), 3, 2); // covered by a snapshot
  assert.equal(c.violation, undefined);
  c.leaderCompleteness(view({ 1: 1 }), 2, 1); // committed in its own term: not required before
  assert.equal(c.violation, undefined);
  c.leaderCompleteness(view({ 1: 1 }), 3, 1);
  assert.match(
    c.violation ?? "",
    /leader completeness: n2 became leader of term 3 without committed entry 2\/2/,
  );
  const d = new Checker();
  d.committed("n1", 1, 1, 1);
  d.leaderCompleteness(view({ 1: 4 }), 5, 1);
  assert.match(d.violation ?? "", /with term 4 at committed index 1/);
});

Deno.test("CLI: prints one JSON line with client_ops and runs seeds in workers", async () => {
  const r = await runCli(["--seeds", "6", "--seed-start", "11", "--steps", "40", "--workers", "2"]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, r.stdout);
  const json = JSON.parse(lines[0]);
  assert.equal(json.seeds, 6);
  assert.equal(json.violations, 0);
  assert.deepEqual(json.failing_seeds, []);
  assert.ok(json.steps >= 6 * 40);
  assert.ok(json.client_ops > 0);
});

Deno.test("CLI: --seed --trace replays one seed with a readable trace; a failure names its seed", async () => {
  const r = await runCli(["--seed", "5", "--steps", "40", "--trace"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /n\d is leader in term \d+/);
  assert.match(r.stdout, /HEAL: faults stop/);
  assert.match(r.stdout.trim().split("\n").at(-1)!, /^\{"seeds":1,.*"client_ops":\d+/);
  const bad = await runCli(["--seed", "x"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--seed must be an integer >= 0, got "x"/);
});

Deno.test("a leader paused past its lease serves no stale lease reads when it resumes (issue 11, defect 8)", async () => {
  // Frequent pauses and mostly lease reads: a paused leader's queued reads
  // are served when it resumes, before the messages of the leader elected
  // meanwhile. With leases counted in ticks (which stop while the process
  // is stopped), seed 7 read at 8.6 s a value overwritten (and acknowledged)
  // 0.3 s before the read was sent.
  const adjust = (p: SimParams) => {
    p.pPause = 0.06;
    p.mix.leaseRead = 40;
    p.mix.restore = 0;
  };
  for (const seed of range(1, 30)) {
    const r = await runSimulation({ seed, adjust });
    assert.equal(r.violation, undefined, `seed ${seed}: ${r.violation}`);
  }
});

Deno.test("checker: a leadership confirmed after a newer leader was seen", () => {
  const c = new Checker();
  c.leaderElected("n1", 2, 100);
  c.leaderElected("n2", 3, 500);
  c.leadershipConfirmed("n1", 2, 400, "read"); // asked before n2 led
  c.leadershipConfirmed("n2", 3, 900, "read");
  assert.equal(c.violation, undefined);
  c.leadershipConfirmed("n1", 2, 600, "verifyLeader");
  assert.match(
    c.violation ?? "",
    /^stale leader: n1 confirmed its leadership of term 2 for verifyLeader asked at 600\.0 ms, but n2 was leader of term 3 since 500\.0 ms/,
  );
});

Deno.test("checker: a transfer reported done with no other leader since", () => {
  const c = new Checker();
  c.leaderElected("n1", 2);
  c.leaderElected("n1", 4); // it led again: not a successor
  c.transferred("n1", 2);
  assert.match(c.violation ?? "", /^leadership transfer: n1 \(leader of term 2\)/);
  const d = new Checker();
  d.leaderElected("n1", 2);
  d.leaderElected("n3", 3);
  d.transferred("n1", 2);
  assert.equal(d.violation, undefined);
});

Deno.test("checker: a client entry applied where a membership change was acknowledged", () => {
  const entry = (index: number) => ({
    index,
    term: 2,
    type: EntryType.Normal,
    data: new Uint8Array([1]),
  });
  const c = new Checker();
  c.applied("n1", entry(5));
  c.configurationCommitted("n1", 6);
  assert.equal(c.violation, undefined);
  c.applied("n2", entry(6));
  assert.match(c.violation ?? "", /^membership: n2 applied entry 6\/2/);
  const d = new Checker();
  d.applied("n1", entry(5));
  d.configurationCommitted("n2", 5);
  assert.match(d.violation ?? "", /^membership: n2 acknowledged a membership change at index 5/);
});
