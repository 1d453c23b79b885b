/**
 * What reads cost a real node, counted in messages on a manual clock (no
 * tick runs, so every message is one the reads caused): concurrent
 * linearizable reads share one heartbeat round, and lease reads send nothing
 * and need no Ready.
 */

import assert from "node:assert/strict";
import { Raft } from "../../mod.ts";
import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../../src/storage/mod.ts";
import { MemoryNetwork } from "../../src/transport/mod.ts";
import { bytes, ListFSM } from "../raft/_cluster.ts";
import { FakeClock } from "./_fake_clock.ts";

const IDS = ["n1", "n2", "n3"];

async function threeNodes(clock: FakeClock): Promise<Raft<number>[]> {
  const network = new MemoryNetwork({ timers: clock });
  const nodes = await Promise.all(IDS.map((id) =>
    Raft.create<number>(
      { id, heartbeatInterval: 50, electionTimeout: 500 },
      new ListFSM(),
      {
        logStore: new MemoryLogStore(),
        stableStore: new MemoryStableStore(),
        snapshotStore: new MemorySnapshotStore({ clock }),
        transport: network.transport(id),
        clock,
      },
    )
  ));
  const configuration = {
    servers: IDS.map((id) => ({ id, address: id, suffrage: "voter" as const })),
  };
  for (const raft of nodes) await clock.run(raft.bootstrapCluster(configuration));
  await clock.advanceUntil(() => nodes.some((r) => r.state === "leader"), 10_000);
  return nodes;
}

function sent(raft: Raft<number>): Record<string, number> {
  return raft.stats().messagesSent;
}

Deno.test("100 concurrent linearizable reads cost one heartbeat round; lease reads cost nothing", async () => {
  const clock = new FakeClock();
  const nodes = await threeNodes(clock);
  try {
    const leader = nodes.find((r) => r.state === "leader")!;
    const { index } = await clock.run(leader.apply(bytes("x")));
    // Let the followers learn the commit (it rides on the next heartbeat) and answer it.
    await clock.advance(100);

    const before = sent(leader);
    let resolved = 0;
    const reads = Array.from(
      { length: 100 },
      () => leader.readIndex().then((i) => (resolved++, i)),
    );
    await clock.settle(); // no time passes: no tick, no timer-driven heartbeat
    assert.equal(resolved, 100, "every read was confirmed without a tick");
    for (const i of await Promise.all(reads)) assert.ok(i >= index);
    const after = sent(leader);
    assert.equal((after.heartbeat ?? 0) - (before.heartbeat ?? 0), 2, "one round: 2 followers");
    assert.equal(after.append ?? 0, before.append ?? 0, "reads write nothing");

    // That round renewed the lease: lease reads are served at once, without messages.
    let leaseResolved = 0;
    const leaseReads = Array.from(
      { length: 100 },
      () => leader.readIndex({ lease: true }).then((i) => (leaseResolved++, i)),
    );
    await Promise.resolve();
    assert.equal(leaseResolved, 100, "served from the lease before any task or message");
    for (const i of await Promise.all(leaseReads)) assert.ok(i >= index);
    await clock.settle();
    assert.deepEqual(sent(leader), after, "no message for lease reads");
  } finally {
    for (const raft of nodes) await clock.run(raft.shutdown());
  }
});

Deno.test("a follower refuses a lease read; a lease read after a write reads it", async () => {
  const clock = new FakeClock();
  const nodes = await threeNodes(clock);
  try {
    const leader = nodes.find((r) => r.state === "leader")!;
    await clock.run(leader.apply(bytes("x")));
    await clock.advance(100);
    const follower = nodes.find((r) => r !== leader)!;
    await assert.rejects(() => follower.readIndex({ lease: true }), { name: "NotLeaderError" });
    const write = leader.apply(bytes("y"));
    await clock.settle();
    const { index } = await write;
    const point = await leader.readIndex({ lease: true });
    assert.ok(point >= index && leader.appliedIndex >= point);
  } finally {
    for (const raft of nodes) await clock.run(raft.shutdown());
  }
});
