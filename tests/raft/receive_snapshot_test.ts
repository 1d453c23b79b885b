/**
 * A received InstallSnapshot reaches the snapshot store only once the core
 * has accepted it (issue 11, defect 1: it was stored first, and `m.to` was
 * never checked, so a misrouted or refused snapshot became the newest on
 * disk and was restored on the next start).
 */

import assert from "node:assert/strict";
import type { InstallSnapshotRequest } from "../../src/core/types.ts";
import { bytes, TestCluster } from "./_cluster.ts";

async function* chunks(text: string): AsyncGenerator<Uint8Array> {
  yield bytes(text);
}

/** A stranger on the network that can send what it likes. */
async function stranger(c: TestCluster) {
  const t = c.network.transport("stranger");
  await t.start({ onMessage() {}, onSnapshot: () => Promise.resolve() });
  return t;
}

Deno.test("a snapshot addressed to another server is refused and not stored", async () => {
  const c = new TestCluster();
  try {
    await c.bootstrap(["a", "b", "c"]);
    const leader = await c.waitLeader();
    await leader.raft.apply(bytes("kept"));
    const b = [...c.nodes.values()].find((n) => n.id !== leader.id)!;
    await c.waitFor("the entry on b", () => b.fsm.items.includes("kept"));
    const term = b.raft.currentTerm + 5;
    const m: InstallSnapshotRequest = {
      type: "snapshot",
      term,
      from: "stranger",
      to: "someone-else",
      meta: {
        index: 1000,
        term,
        configuration: { servers: [{ id: "stranger", address: "stranger", suffrage: "voter" }] },
        configurationIndex: 1000,
      },
    };
    const t = await stranger(c);
    await assert.rejects(
      t.sendSnapshot(b.id, m, chunks(`["foreign"]`)),
      /addressed to "someone-else"/,
    );
    assert.deepEqual(await b.snapshotStore.list(), [], "nothing was stored");
    assert.equal(b.raft.currentTerm, term - 5, "the term did not move");
    // A restart finds only its own state.
    await c.stop(b.id);
    const again = await c.start(b.id);
    assert.ok(again.fsm.items.includes("kept") || again.raft.lastIndex > 0);
    assert.ok(!again.fsm.items.includes("foreign"));
    await c.waitFor("b to catch up again", () => again.fsm.items.includes("kept"));
  } finally {
    await c.shutdown();
  }
});

Deno.test("a snapshot the core does not install is not stored", async () => {
  const c = new TestCluster();
  try {
    await c.bootstrap(["a", "b", "c"]);
    const leader = await c.waitLeader();
    await leader.raft.apply(bytes("kept"));
    const b = [...c.nodes.values()].find((n) => n.id !== leader.id)!;
    await c.waitFor("the entry on b", () => b.fsm.items.includes("kept"));
    // In the current term, as if from the leader, but behind b's commit index:
    // the core answers it without installing it.
    const term = b.raft.currentTerm;
    const m: InstallSnapshotRequest = {
      type: "snapshot",
      term,
      from: leader.id,
      to: b.id,
      meta: { index: 1, term: 1, configuration: { servers: [] }, configurationIndex: 0 },
    };
    const t = await stranger(c);
    await t.sendSnapshot(b.id, m, chunks("not the state of any FSM"));
    assert.deepEqual(await b.snapshotStore.list(), [], "nothing was stored");
    // Stored, it would be the newest snapshot: the restart would restore it and fail.
    await c.stop(b.id);
    const again = await c.start(b.id);
    await c.waitFor("b to catch up again", () => again.fsm.items.includes("kept"));
  } finally {
    await c.shutdown();
  }
});
