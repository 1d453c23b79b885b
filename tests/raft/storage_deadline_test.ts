/**
 * Every storage call of the write path has a deadline: a leader whose disk
 * hangs steps down (issue 11, defect 3: log compaction, log clearing and the
 * deletes of the write path had none, and `restore()` waited for the write
 * queue with no deadline while holding the snapshot lock; a restore now goes
 * through the log and holds no lock).
 */

import assert from "node:assert/strict";
import { LeadershipLostError, NotLeaderError, TimeoutError } from "../../mod.ts";
import { MemoryLogStore } from "../../src/storage/mod.ts";
import { bytes, TestCluster, type TestNode } from "./_cluster.ts";

/** A memory log whose deletes never finish once `hang` is set: a disk that stopped answering. */
class HangingLogStore extends MemoryLogStore {
  hang = false;
  hung = 0;
  override deleteRange(min: number, max: number): Promise<void> {
    if (!this.hang) return super.deleteRange(min, max);
    this.hung++;
    return new Promise(() => {});
  }
}

const STORAGE_TIMEOUT = 300;

async function clusterWithHangingLogs(): Promise<TestCluster> {
  // trailingLogs 0: a snapshot compacts the whole log (a deleteRange).
  const c = new TestCluster({
    storageTimeout: STORAGE_TIMEOUT,
    trailingLogs: 0,
    snapshotThreshold: 1_000_000,
  });
  c.newLogStore = () => new HangingLogStore();
  await c.bootstrap(["a", "b", "c"]);
  return c;
}

/** Hang the leader's log, then take a snapshot: its compaction hangs in the write queue. */
async function hangCompaction(c: TestCluster): Promise<TestNode> {
  const leader = await c.waitLeader();
  for (let i = 0; i < 5; i++) await leader.raft.apply(bytes(`v${i}`));
  const log = leader.logStore as HangingLogStore;
  log.hang = true;
  await leader.raft.snapshot();
  await c.waitFor("the compaction to hang", () => log.hung > 0);
  return leader;
}

Deno.test("a leader whose log compaction hangs steps down", async () => {
  const c = await clusterWithHangingLogs();
  try {
    const old = await hangCompaction(c);
    await c.waitFor(
      "another node to lead",
      () => c.running().some((n) => n !== old && n.raft.state === "leader"),
      STORAGE_TIMEOUT + 5000,
    );
    assert.notEqual(old.raft.state, "leader");
    const leader = c.running().find((n) => n.raft.state === "leader")!;
    await leader.raft.apply(bytes("after"));
  } finally {
    for (const n of c.nodes.values()) (n.logStore as HangingLogStore).hang = false;
    await c.shutdown();
  }
});

Deno.test("a restore on a leader whose disk hangs ends: committed by the followers, or failed", async () => {
  // It once waited for the write queue with no deadline while holding the
  // snapshot lock. It now travels through the log: the followers can commit
  // it while the leader's own write hangs, and the leader steps down.
  const c = await clusterWithHangingLogs();
  try {
    const leader = await hangCompaction(c);
    const restore = leader.raft.restore(
      (async function* () {
        yield bytes(JSON.stringify(["restored"]));
      })(),
    ).then(() => "restored", (e: Error) => e);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      restore,
      new Promise<string>((r) =>
        timer = setTimeout(() => r("still waiting"), STORAGE_TIMEOUT + 5000)
      ),
    ]);
    clearTimeout(timer);
    assert.ok(
      outcome === "restored" || outcome instanceof LeadershipLostError ||
        outcome instanceof NotLeaderError || outcome instanceof TimeoutError,
      `expected the restore to end, got ${outcome}`,
    );
    if (outcome === "restored") {
      const others = c.running().filter((n) => n !== leader);
      await c.waitFor(
        "the followers to hold the restored state",
        () => others.every((n) => n.fsm.items.join() === "restored"),
      );
    }
  } finally {
    for (const n of c.nodes.values()) (n.logStore as HangingLogStore).hang = false;
    await c.shutdown();
  }
});

Deno.test("a follower whose log compaction hangs warns, and says nothing of stepping down", async () => {
  // It logged "stepping down as leader" as an error on every slow call,
  // leader or not: an operator chased a leader change that never happened.
  const lines: Array<{ level: string; message: string }> = [];
  const at = (level: string) => (message: string) => void lines.push({ level, message });
  const c = new TestCluster({
    storageTimeout: STORAGE_TIMEOUT,
    trailingLogs: 0,
    snapshotThreshold: 1_000_000,
    logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") },
  });
  c.newLogStore = () => new HangingLogStore();
  await c.bootstrap(["a", "b", "c"]);
  try {
    const leader = await c.waitLeader();
    for (let i = 0; i < 5; i++) await leader.raft.apply(bytes(`v${i}`));
    const follower = c.running().find((n) => n !== leader)!;
    await c.waitFor("the follower to apply", () => follower.raft.appliedIndex >= 6);
    const log = follower.logStore as HangingLogStore;
    log.hang = true;
    await follower.raft.snapshot();
    await c.waitFor("the compaction to hang", () => log.hung > 0);
    const slow = (l: { message: string }) => l.message.startsWith("{what} has taken more than");
    await c.waitFor("the warning", () => lines.some(slow), STORAGE_TIMEOUT + 5000);
    assert.deepEqual(lines.filter(slow).map((l) => [l.level, l.message]), [
      ["warn", "{what} has taken more than {ms} ms"],
    ]);
    assert.equal(leader.raft.state, "leader");
  } finally {
    for (const n of c.nodes.values()) (n.logStore as HangingLogStore).hang = false;
    await c.shutdown();
  }
});
