/**
 * Operations keep their deadlines while `shutdown()` waits.
 *
 * A leadership transfer keeps its deadline while `shutdown()` waits for the
 * disk (found by the whole-node simulation, seeds 57487223 and 57487462 at
 * 3000 steps). `shutdown()` stops the ticks, then lets the write in flight
 * finish for up to `storageTimeout`; the deadlines swept meanwhile were
 * those of applies and reads, not of transfers, so a transfer asked for
 * just before `shutdown()` answered only when the whole shutdown ended
 * (`ShutdownError`, a second after its 401 ms timeout in the simulation).
 * And the sweep starts before the transport closes: a TCP transport's close
 * waits for its sends (a snapshot stream among them), and nothing was swept
 * meanwhile. And the first sweep runs as `shutdown()` starts, not a tick
 * later: the tick it cancelled may have been all but due (seed 91002662 at
 * 3000 steps: a barrier 138 ms past its 568 ms timeout, with 100 ms ticks).
 * Three real nodes on one manual clock, so the run is deterministic.
 */

import assert from "node:assert/strict";
import { Raft, TimeoutError } from "../../mod.ts";
import type { Entry } from "../../src/core/types.ts";
import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../../src/storage/mod.ts";
import { MemoryNetwork } from "../../src/transport/mod.ts";
import { bytes, ListFSM } from "../raft/_cluster.ts";
import { FakeClock } from "./_fake_clock.ts";

/** A memory log whose appends never finish once `hang` is set: a disk that stopped answering. */
class HangingLogStore extends MemoryLogStore {
  hang = false;
  override storeLogs(entries: Entry[]): Promise<void> {
    return this.hang ? new Promise(() => {}) : super.storeLogs(entries);
  }
}

interface Node {
  id: string;
  raft: Raft<number>;
  logStore: HangingLogStore;
  /** How long (fake time) the node's transport takes to close: a send still draining. */
  closeDelayMs: number;
}

const HEARTBEAT_MS = 20;
const STORAGE_TIMEOUT_MS = 2000;

async function cluster(clock: FakeClock): Promise<Node[]> {
  const network = new MemoryNetwork({ timers: clock });
  const ids = ["n1", "n2", "n3"];
  const nodes: Node[] = [];
  for (const [i, id] of ids.entries()) {
    const logStore = new HangingLogStore();
    const transport = network.transport(id);
    const node = { id, logStore, closeDelayMs: 0 } as Node;
    const close = transport.close.bind(transport);
    transport.close = async () => {
      if (node.closeDelayMs > 0) {
        await new Promise<void>((resolve) => clock.setTimeout(resolve, node.closeDelayMs));
      }
      await close();
    };
    // Distinct election timeouts, so the run does not depend on luck.
    const raft = await Raft.create<number>(
      {
        id,
        heartbeatInterval: HEARTBEAT_MS,
        electionTimeout: 200,
        storageTimeout: STORAGE_TIMEOUT_MS,
        random: () => i / ids.length,
      },
      new ListFSM(),
      {
        logStore,
        stableStore: new MemoryStableStore(),
        snapshotStore: new MemorySnapshotStore({ clock }),
        transport,
        clock,
      },
    );
    node.raft = raft;
    nodes.push(node);
  }
  await clock.run(nodes[0].raft.bootstrapCluster({
    servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })),
  }));
  await clock.advanceUntil(() => nodes.filter((n) => n.raft.state === "leader").length === 1);
  return nodes;
}

/** How an operation ended: succeeded, or its error, when, and whether `shutdown()` had ended. */
type Outcome = "succeeded" | { error: Error; at: number; stopped: boolean };

function outcomeOf(
  clock: FakeClock,
  operation: Promise<unknown>,
  stopped: () => boolean,
): Promise<Outcome> {
  return operation.then(
    () => "succeeded" as const,
    (error: Error) => ({ error, at: clock.now(), stopped: stopped() }),
  );
}

/** A formed cluster on a fake clock, its leader after one committed write, and the leader's shutdown. */
interface Scene {
  clock: FakeClock;
  nodes: Node[];
  leader: Node;
  /** Start the leader's `shutdown()` (awaited when the test ends). */
  shutDownLeader(): void;
  /** Whether the leader's `shutdown()` has ended. */
  stopped(): boolean;
}

/** Run `body` on a {@linkcode Scene}; every node is shut down afterwards, whatever happened. */
async function withLeader(body: (scene: Scene) => Promise<void>): Promise<void> {
  const clock = new FakeClock();
  const nodes = await cluster(clock);
  const leader = nodes.find((n) => n.raft.state === "leader")!;
  let shutdown: Promise<unknown> = Promise.resolve();
  let stopped = false;
  try {
    await clock.run(leader.raft.apply(bytes("before")));
    await body({
      clock,
      nodes,
      leader,
      shutDownLeader: () => shutdown = leader.raft.shutdown().then(() => stopped = true),
      stopped: () => stopped,
    });
  } finally {
    await clock.run(
      Promise.all([shutdown, ...nodes.map((n) => n.raft.shutdown())]),
      2 * STORAGE_TIMEOUT_MS,
    );
  }
}

/** It timed out within a sweep (half a heartbeat) of its 100 ms deadline, before `shutdown()` ended. */
function assertTimedOutBeforeShutdown(
  outcome: Outcome,
  asked: number,
): asserts outcome is Exclude<Outcome, "succeeded"> {
  assert.ok(typeof outcome === "object", `expected an error, got ${outcome}`);
  assert.ok(
    outcome.error instanceof TimeoutError,
    `expected a TimeoutError, got ${outcome.error} after ${outcome.at - asked} ms`,
  );
  assert.equal(outcome.stopped, false, "it timed out before shutdown() ended");
  assert.ok(
    outcome.at - asked <= 100 + HEARTBEAT_MS,
    `answered ${outcome.at - asked} ms after it was asked, with a 100 ms timeout`,
  );
}

Deno.test("a leadership transfer times out at its deadline while shutdown() waits for a hung disk", async () => {
  await withLeader(async ({ clock, nodes, leader, shutDownLeader, stopped }) => {
    const target = nodes.find((n) => n !== leader)!;
    // The leader's disk stops answering with a write in flight: shutdown()
    // will wait storageTimeout for it.
    leader.logStore.hang = true;
    leader.raft.apply(bytes("stuck")).catch(() => {});
    await clock.settle();

    const asked = clock.now();
    const transfer = outcomeOf(
      clock,
      leader.raft.leadershipTransfer(target.id, { timeout: 100 }),
      stopped,
    );
    // In the same turn: the transfer's TimeoutNow never goes out, so only
    // its deadline can end it.
    shutDownLeader();

    const outcome = await clock.run(transfer, 2 * STORAGE_TIMEOUT_MS);
    assertTimedOutBeforeShutdown(outcome, asked);
    assert.match(outcome.error.message, /^leadershipTransfer timed out after 100 ms/);
  });
});

Deno.test("an apply times out at its deadline while shutdown() waits for the transport to close", async () => {
  await withLeader(async ({ clock, leader, shutDownLeader, stopped }) => {
    // The write cannot commit (the disk stopped answering), and the
    // transport takes a second and a half to close.
    leader.logStore.hang = true;
    leader.closeDelayMs = 1500;
    const asked = clock.now();
    const apply = outcomeOf(clock, leader.raft.apply(bytes("stuck"), { timeout: 100 }), stopped);
    shutDownLeader();

    const outcome = await clock.run(apply, 2 * STORAGE_TIMEOUT_MS);
    assertTimedOutBeforeShutdown(outcome, asked);
  });
});

Deno.test("a deadline passed since the last tick is swept as shutdown() starts", async () => {
  await withLeader(async ({ clock, nodes, leader, shutDownLeader, stopped }) => {
    // No disk answers: nothing commits, so only the deadline ends an apply.
    for (const n of nodes) n.logStore.hang = true;
    // An apply whose deadline has passed while no tick has come since: try
    // until the tick does not fall in the millisecond after the deadline.
    let pending: Promise<Outcome> | undefined;
    for (let attempt = 0; attempt < 10 && pending === undefined; attempt++) {
      await clock.advance(3 + attempt); // off the ticks' phase
      let settled = false;
      const apply = outcomeOf(
        clock,
        leader.raft.apply(bytes(`stuck-${attempt}`), { timeout: 100 }),
        stopped,
      );
      void apply.then(() => settled = true);
      await clock.advance(101);
      await clock.settle();
      if (!settled) pending = apply;
    }
    assert.ok(pending, "an apply still waiting one millisecond past its deadline");
    let settled = false;
    void pending.then(() => settled = true);
    shutDownLeader();
    await clock.settle(); // no time passes
    assert.equal(settled, true, "the deadline is swept as shutdown() starts");
    const outcome = await pending;
    assert.ok(typeof outcome === "object" && outcome.error instanceof TimeoutError, `${outcome}`);
    assert.equal(outcome.stopped, false);
  });
});
