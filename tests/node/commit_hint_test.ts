/**
 * The commit index is stored only as a hint for fast restarts, at most once
 * a second: that write must not hold up the batch that triggered it.
 */

import assert from "node:assert/strict";
import { Raft } from "../../mod.ts";
import type { HardState } from "../../src/core/types.ts";
import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../../src/storage/mod.ts";
import { MemoryNetwork } from "../../src/transport/mod.ts";
import { bytes, ListFSM } from "../raft/_cluster.ts";
import { FakeClock } from "./_fake_clock.ts";

/** A stable store whose writes of a new commit index alone wait until released. */
class SlowHintStore extends MemoryStableStore {
  #release: Array<() => void> = [];
  #released = false;
  held = 0;

  override async setState(state: HardState): Promise<void> {
    const current = await this.getState();
    const hintOnly = current !== undefined && current.term === state.term &&
      current.vote === state.vote;
    if (hintOnly && !this.#released) {
      this.held++;
      await new Promise<void>((resolve) => this.#release.push(resolve));
    }
    await super.setState(state);
  }

  release(): void {
    this.#released = true;
    for (const resolve of this.#release.splice(0)) resolve();
  }
}

Deno.test("a slow commit-hint write does not hold up commits", async () => {
  const clock = new FakeClock();
  const stableStore = new SlowHintStore();
  const fsm = new ListFSM();
  const raft = await Raft.create<number>(
    { id: "n1", heartbeatInterval: 20, electionTimeout: 100 },
    fsm,
    {
      logStore: new MemoryLogStore(),
      stableStore,
      snapshotStore: new MemorySnapshotStore({ clock }),
      transport: new MemoryNetwork({ timers: clock }).transport("n1"),
      clock,
    },
  );
  try {
    await clock.run(
      raft.bootstrapCluster({ servers: [{ id: "n1", address: "n1", suffrage: "voter" }] }),
    );
    await clock.advanceUntil(() => raft.state === "leader", 1000);
    await clock.run(raft.apply(bytes("a")));
    await clock.advance(1500); // the next commit is due to store its hint
    await clock.run(raft.apply(bytes("b")));
    assert.equal(stableStore.held, 1, "the commit hint of b is being written, and stays stuck");
    // Later batches are written and committed meanwhile (no time passes).
    let done = 0;
    const writes = ["c", "d", "e"].map((v) => raft.apply(bytes(v)).then(() => done++));
    await clock.settle();
    assert.equal(done, 3, "the commits did not wait for the hint");
    await Promise.all(writes);
    assert.deepEqual(fsm.items, ["a", "b", "c", "d", "e"]);
  } finally {
    stableStore.release();
    await clock.run(raft.shutdown());
  }
});
