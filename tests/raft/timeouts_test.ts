/**
 * A timed-out operation says which operation it was and the timeout it was
 * given (issue 11, defect 6: `verifyLeader({ timeout: 300 })` said "read
 * timed out after 0 ms").
 */

import assert from "node:assert/strict";
import { TimeoutError } from "../../mod.ts";
import { bytes, TestCluster } from "./_cluster.ts";

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
