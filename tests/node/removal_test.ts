import assert from "node:assert/strict";
import type { Configuration } from "../../src/core/types.ts";
import type { NodeContext } from "../../src/node/context.ts";
import { RemovalWatch } from "../../src/node/removal.ts";
import { NodeTimers } from "../../src/node/timers.ts";
import { FakeClock } from "./_fake_clock.ts";

const ELECTION_TIMEOUT = 1000;

function configOf(...voters: string[]): Configuration {
  return { servers: voters.map((id) => ({ id, address: id, suffrage: "voter" as const })) };
}

/** A follower "n4" as RemovalWatch sees it: what it applied, what its log holds. */
function follower(clock: FakeClock) {
  const state = {
    applied: { index: 10, configuration: configOf("n1", "n2", "n4") },
    latest: { index: 10, configuration: configOf("n1", "n2", "n4") },
    lastIndex: 10,
    shutdowns: 0,
  };
  const node = {
    id: "n4",
    core: {
      get lastIndex() {
        return state.lastIndex;
      },
      latestConfiguration: () => state.latest,
    },
    clock,
    timers: new NodeTimers(clock),
    log: { info() {}, debug() {}, warn() {}, error() {} },
    config: () => ({ shutdownOnRemove: true, electionTimeout: ELECTION_TIMEOUT }),
    isShutdown: () => state.shutdowns > 0,
    emit() {},
  } as unknown as NodeContext;
  const watch = new RemovalWatch(node, () => state.applied, () => state.shutdowns++);
  return { state, watch };
}

Deno.test("a removed server still being sent entries waits for them before shutdownOnRemove stops it", async () => {
  // Found by the whole-node simulation (seeds 57487038 and 57488399 at 3000
  // steps, one entry per append): a server added back to the cluster
  // replays, while it catches up, the entries that once removed it; three
  // election timeouts after applying one it shut down, although the leader
  // was still sending it entries, and the operator's restart set it back to
  // the same place: it caught up a few dozen entries per restart. A leader
  // stops sending entries to a server it removed once that server has the
  // removal, so a log still growing means: not yet.
  const clock = new FakeClock();
  const { state, watch } = follower(clock);
  state.applied = { index: 11, configuration: configOf("n1", "n2") };
  state.latest = state.applied;
  watch.note();
  assert.equal(watch.removed, true);
  for (let i = 0; i < 10; i++) {
    state.lastIndex += 3; // the leader goes on sending entries
    await clock.advance(ELECTION_TIMEOUT);
  }
  assert.equal(state.shutdowns, 0, "shut down while entries still came");
  // It reaches the entry that added it back: it stays.
  state.latest = { index: 40, configuration: configOf("n1", "n2", "n4") };
  state.lastIndex = 40;
  await clock.advance(10 * ELECTION_TIMEOUT);
  assert.equal(state.shutdowns, 0);
  clock.close();
});

Deno.test("a removed server no longer sent entries shuts down after the grace period", async () => {
  const clock = new FakeClock();
  const { state, watch } = follower(clock);
  state.applied = { index: 11, configuration: configOf("n1", "n2") };
  state.latest = state.applied;
  state.lastIndex = 11;
  watch.note();
  await clock.advance(2 * ELECTION_TIMEOUT);
  state.lastIndex = 12; // one more entry, then nothing
  await clock.advance(2 * ELECTION_TIMEOUT);
  assert.equal(state.shutdowns, 0);
  await clock.advance(3 * ELECTION_TIMEOUT);
  assert.equal(state.shutdowns, 1);
  clock.close();
});
