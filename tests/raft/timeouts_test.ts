/**
 * A timed-out operation says which operation it was and the timeout it was
 * given (issue 11, defect 6: `verifyLeader({ timeout: 300 })` said "read
 * timed out after 0 ms").
 */

import assert from "node:assert/strict";
import { TimeoutError } from "../../mod.ts";
import type { Entry } from "../../src/core/types.ts";
import { MemoryLogStore } from "../../src/storage/mod.ts";
import { bytes, sleep, TestCluster } from "./_cluster.ts";

Deno.test("timeouts name the operation and the timeout it was given", async () => {
  // Without check-quorum an isolated leader stays leader: its operations can only time out.
  const c = new TestCluster({ checkQuorum: false });
  try {
    await c.bootstrap(["a", "b", "c"]);
    const leader = await c.waitLeader();
    await leader.raft.apply(bytes("before"));
    c.network.isolate(leader.id);
    const cases: Array<[string, Promise<unknown>]> = [
      ["verifyLeader", leader.raft.verifyLeader({ timeout: 300 })],
      ["readIndex", leader.raft.readIndex({ timeout: 250 })],
      ["apply", leader.raft.apply(bytes("lost"), { timeout: 200 })],
      ["barrier", leader.raft.barrier({ timeout: 150 })],
    ];
    const timeouts = [300, 250, 200, 150];
    const errors = await Promise.all(cases.map(([, p]) => p.then(() => undefined, (e) => e)));
    for (const [i, [op]] of cases.entries()) {
      const e = errors[i];
      assert.ok(e instanceof TimeoutError, `${op}: ${e}`);
      assert.match(e.message, new RegExp(`^${op} timed out after ${timeouts[i]} ms`));
    }
  } finally {
    c.network.heal();
    await c.shutdown();
  }
});

Deno.test("a leadership transfer that times out says so with its timeout", async () => {
  const c = new TestCluster({ checkQuorum: false });
  try {
    await c.bootstrap(["a", "b", "c"]);
    const leader = await c.waitLeader();
    c.network.isolate(leader.id);
    // The transfer gives up after an election timeout (100 ms) unless its own timeout is shorter.
    await assert.rejects(
      leader.raft.leadershipTransfer(undefined, { timeout: 40 }),
      (e: Error) =>
        e instanceof TimeoutError && /^leadershipTransfer timed out after 40 ms/.test(e.message),
    );
  } finally {
    c.network.heal();
    await c.shutdown();
  }
});

/** A memory log whose appends never finish once `hang` is set: a disk that stopped answering. */
class HangingLogStore extends MemoryLogStore {
  hang = false;
  override storeLogs(entries: Entry[]): Promise<void> {
    return this.hang ? new Promise(() => {}) : super.storeLogs(entries);
  }
}

Deno.test("timeouts still hold while shutdown() waits for a hung disk", async () => {
  // shutdown() lets the write in flight finish, for up to storageTimeout;
  // it stopped the ticks that enforce deadlines first, so an apply with a
  // 100 ms timeout waited for the whole shutdown (and then reported a lost
  // leadership instead of its timeout).
  const c = new TestCluster({ storageTimeout: 5000 });
  c.newLogStore = () => new HangingLogStore();
  try {
    await c.bootstrap(["a"]);
    const leader = await c.waitLeader();
    await leader.raft.apply(bytes("before"));
    (leader.logStore as HangingLogStore).hang = true;
    let stopped = false;
    const applied = leader.raft.apply(bytes("stuck"), { timeout: 100 }).then(
      () => "applied",
      (e: Error) => ({ error: e, stopped }),
    );
    await sleep(10);
    const shutdown = leader.raft.shutdown().then(() => stopped = true);
    const outcome = await applied;
    assert.ok(typeof outcome === "object", `expected an error, got ${outcome}`);
    assert.ok(
      outcome.error instanceof TimeoutError,
      `expected a TimeoutError, got ${outcome.error}`,
    );
    assert.equal(outcome.error.outcome, "unknown");
    assert.equal(outcome.stopped, false, "it timed out before shutdown() ended");
    await shutdown;
  } finally {
    await c.shutdown();
  }
});
