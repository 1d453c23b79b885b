/**
 * The driver takes all its time and scheduling from the injected clock: on a
 * manual clock a node does nothing until time is advanced, and shutdown
 * leaves no timer of its own behind (and does not close a clock it was given).
 */

import assert from "node:assert/strict";
import { Raft } from "../../mod.ts";
import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../../src/storage/mod.ts";
import { MemoryNetwork } from "../../src/transport/mod.ts";
import { bytes, ListFSM } from "../raft/_cluster.ts";
import { FakeClock } from "./_fake_clock.ts";

Deno.test("on a manual clock a node makes no progress until time is advanced", async () => {
  const clock = new FakeClock();
  const network = new MemoryNetwork({ timers: clock });
  const fsm = new ListFSM();
  const raft = await Raft.create<number>(
    { id: "n1", heartbeatInterval: 20, electionTimeout: 100 },
    fsm,
    {
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      snapshotStore: new MemorySnapshotStore({ clock }),
      transport: network.transport("n1"),
      clock,
    },
  );
  try {
    await clock.run(
      raft.bootstrapCluster({ servers: [{ id: "n1", address: "n1", suffrage: "voter" }] }),
    );
    // Real time passes, fake time does not: no election.
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(raft.state, "follower");
    assert.equal(raft.currentTerm, 1);
    await clock.advanceUntil(() => raft.state === "leader", 1000);
    assert.ok(clock.now() >= 100, `elected after ${clock.now()} ms of fake time`);
    const r = await clock.run(raft.apply(bytes("x")));
    assert.equal(r.response, 1);
    assert.deepEqual(fsm.items, ["x"]);
  } finally {
    await clock.run(raft.shutdown());
  }
  assert.equal(clock.pendingTimers, 0, "shutdown cancelled every timer of the node");
  assert.equal(clock.closed, false, "a clock passed in is not closed by the node");
});

Deno.test("stores.clock is checked", async () => {
  const network = new MemoryNetwork();
  await assert.rejects(
    () =>
      Raft.create({ id: "x" }, new ListFSM(), {
        logStore: new MemoryLogStore(),
        stableStore: new MemoryStableStore(),
        snapshotStore: new MemorySnapshotStore(),
        transport: network.transport("x"),
        clock: { now: () => 0 } as never,
      }),
    (e: Error) => e instanceof TypeError && /stores\.clock must implement Clock/.test(e.message),
  );
});
