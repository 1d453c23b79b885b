/**
 * `leadershipTransfer()` resolves once another node leads, not merely once
 * this one stops leading (issue 11, defect 2: a step-down without a known
 * successor resolved it too).
 */

import assert from "node:assert/strict";
import { AbortError, LeadershipTransferError } from "../../mod.ts";
import { sleep, TestCluster, type TestNode } from "./_cluster.ts";

/**
 * Start a transfer from the leader to `target` and cut the two apart the
 * moment the leader steps down (it got the target's vote request): the target
 * wins with the third server's vote, the old leader never hears of it.
 */
async function transferThenCut(c: TestCluster): Promise<{
  leader: TestNode;
  target: string;
  transfer: Promise<unknown>;
}> {
  const leader = await c.waitLeader();
  const target = [...c.nodes.keys()].find((id) => id !== leader.id)!;
  const stop = leader.raft.observe(
    () => c.network.partition([leader.id], [target]),
    (o) => o.type === "state" && o.state !== "leader",
  );
  const transfer = leader.raft.leadershipTransfer(target);
  transfer.catch(() => {});
  await c.waitFor("the leader to step down", () => leader.raft.state !== "leader");
  stop();
  await c.waitFor(`${target} to lead`, () => c.nodes.get(target)!.raft.state === "leader");
  return { leader, target, transfer };
}

Deno.test("a transfer is not done while the old leader knows of no new one", async () => {
  const c = new TestCluster();
  try {
    await c.bootstrap(["a", "b", "c"]);
    const { leader, transfer } = await transferThenCut(c);
    const outcome = await transfer.then(() => "resolved", (e: Error) => e);
    assert.equal(leader.raft.leader, undefined, "the old leader knows of no leader");
    assert.ok(
      outcome instanceof LeadershipTransferError,
      `expected a LeadershipTransferError, got ${outcome}`,
    );
    assert.match(outcome.message, /no other node has taken over/);
  } finally {
    c.network.heal();
    await c.shutdown();
  }
});

Deno.test("a transfer resolves once the old leader hears of the new one", async () => {
  const c = new TestCluster();
  try {
    await c.bootstrap(["a", "b", "c"]);
    const { leader, target, transfer } = await transferThenCut(c);
    let settled = false;
    transfer.finally(() => settled = true).catch(() => {});
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(settled, false, "stepping down alone does not finish the transfer");
    c.network.heal();
    await transfer;
    assert.equal(leader.raft.leader?.id, target);
  } finally {
    c.network.heal();
    await c.shutdown();
  }
});

Deno.test("an aborted leadershipTransfer() stops waiting at once; an aborted signal starts none", async () => {
  // The target is cut off, so the transfer cannot finish by itself: the
  // call must end on its signal (it was ignored: the call waited for the
  // core to give up an election timeout later).
  const c = new TestCluster({ electionTimeout: 2000 });
  try {
    await c.bootstrap(["a", "b", "c"]);
    const leader = await c.waitLeader();
    const target = [...c.nodes.keys()].find((id) => id !== leader.id)!;

    const before = new AbortController();
    before.abort(new Error("the operator changed their mind"));
    const refused = await leader.raft.leadershipTransfer(target, { signal: before.signal })
      .then(() => "resolved", (e: Error) => e);
    assert.ok(refused instanceof AbortError, `expected an AbortError, got ${refused}`);
    assert.equal(refused.outcome, "not_committed");
    assert.equal(leader.raft.state, "leader");
    await leader.raft.apply(new Uint8Array([1]), { timeout: 1000 }); // no transfer holds proposals

    c.network.isolate(target);
    const controller = new AbortController();
    const transfer = leader.raft.leadershipTransfer(target, { signal: controller.signal });
    const settled = transfer.then(() => "resolved", (e: Error) => e);
    await sleep(50);
    controller.abort();
    const outcome = await Promise.race([settled, sleep(500).then(() => "still waiting")]);
    assert.ok(outcome instanceof AbortError, `expected an AbortError, got ${outcome}`);
    assert.match(outcome.message, /^leadershipTransfer aborted/);
  } finally {
    c.network.heal();
    await c.shutdown();
  }
});
