/**
 * Lease reads after a process pause (issue 11, defect 8). Three real nodes
 * on one manual clock; the leader is paused (it handles nothing: no timers,
 * no tasks, messages queue up for it) while time runs on, a new leader is
 * elected and acknowledges a write; then the old leader resumes and handles
 * a lease read *before* the messages that queued up for it. Its ticks did
 * not advance, so counted in ticks its lease still held; judged on the clock
 * from when the acknowledged heartbeat was sent, it did not.
 */

import assert from "node:assert/strict";
import { NotLeaderError, Raft } from "../../mod.ts";
import type { Clock, TimerHandle } from "../../src/platform/clock.ts";
import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../../src/storage/mod.ts";
import { MemoryNetwork } from "../../src/transport/mod.ts";
import type { Transport, TransportHandler } from "../../src/transport/types.ts";
import { bytes, ListFSM } from "../raft/_cluster.ts";
import { FakeClock } from "./_fake_clock.ts";

/** One process's view of a shared manual clock: while paused, its timers and tasks wait. */
class PausableClock implements Clock {
  #base: FakeClock;
  #paused = false;
  #waiting: Array<() => void> = [];

  constructor(base: FakeClock) {
    this.#base = base;
  }

  now(): number {
    return this.#base.now();
  }
  wallClock(): number {
    return this.#base.wallClock();
  }
  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.#base.setTimeout(() => this.#run(callback), ms);
  }
  clearTimeout(handle: TimerHandle): void {
    this.#base.clearTimeout(handle);
  }
  queueTask(callback: () => void): void {
    this.#base.queueTask(() => this.#run(callback));
  }
  close(): void {}

  #run(callback: () => void): void {
    if (this.#paused) this.#waiting.push(callback);
    else callback();
  }

  pause(): void {
    this.#paused = true;
  }

  /** Resume: what came due meanwhile runs now, in order (as a stopped process does on SIGCONT). */
  resume(): void {
    this.#paused = false;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const callback of waiting) this.#base.queueTask(callback);
  }
}

/** A transport whose incoming messages queue up while held (a stopped process's sockets). */
class HoldingTransport implements Transport {
  #inner: Transport;
  #held: Array<() => void> = [];
  holding = false;

  constructor(inner: Transport) {
    this.#inner = inner;
  }
  get localAddress(): string {
    return this.#inner.localAddress;
  }
  start(handler: TransportHandler): Promise<void> {
    return this.#inner.start({
      onMessage: (m, from) => {
        if (this.holding) this.#held.push(() => handler.onMessage(m, from));
        else handler.onMessage(m, from);
      },
      onSnapshot: (m, data, from) => handler.onSnapshot(m, data, from),
    });
  }
  send(address: string, message: Parameters<Transport["send"]>[1]): void {
    this.#inner.send(address, message);
  }
  sendSnapshot(...args: Parameters<Transport["sendSnapshot"]>): Promise<void> {
    return this.#inner.sendSnapshot(...args);
  }
  close(): Promise<void> {
    return this.#inner.close();
  }

  /** Deliver what queued up, in order. */
  release(): void {
    this.holding = false;
    const held = this.#held;
    this.#held = [];
    for (const deliver of held) deliver();
  }
}

interface PausableNode {
  id: string;
  raft: Raft<number>;
  fsm: ListFSM;
  clock: PausableClock;
  transport: HoldingTransport;
}

async function cluster(base: FakeClock): Promise<PausableNode[]> {
  const network = new MemoryNetwork({ timers: base });
  const ids = ["n1", "n2", "n3"];
  const nodes: PausableNode[] = [];
  for (const [i, id] of ids.entries()) {
    const clock = new PausableClock(base);
    const transport = new HoldingTransport(network.transport(id));
    const fsm = new ListFSM();
    // Distinct election timeouts, so the run does not depend on luck.
    const raft = await Raft.create<number>(
      { id, heartbeatInterval: 20, electionTimeout: 200, random: () => i / ids.length },
      fsm,
      {
        logStore: new MemoryLogStore(),
        stableStore: new MemoryStableStore(),
        snapshotStore: new MemorySnapshotStore({ clock }),
        transport,
        clock,
      },
    );
    nodes.push({ id, raft, fsm, clock, transport });
  }
  await base.run(nodes[0].raft.bootstrapCluster({
    servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })),
  }));
  await base.advanceUntil(() => nodes.filter((n) => n.raft.state === "leader").length === 1);
  return nodes;
}

async function shutdown(base: FakeClock, nodes: PausableNode[]): Promise<void> {
  for (const n of nodes) {
    n.clock.resume();
    n.transport.release();
  }
  await base.run(Promise.all(nodes.map((n) => n.raft.shutdown())));
}

Deno.test("a leader resumed after a pause does not serve a lease read from its stale lease", async () => {
  const base = new FakeClock();
  const nodes = await cluster(base);
  try {
    const old = nodes.find((n) => n.raft.state === "leader")!;
    const first = await base.run(old.raft.apply(bytes("first")));
    await base.advanceUntil(() => nodes.every((n) => n.fsm.items.includes("first")));
    // A lease read right now is served from the lease: no heartbeat round of its own.
    const sent = old.raft.stats().messagesSent.heartbeat ?? 0;
    assert.ok((await base.run(old.raft.readIndex({ lease: true }))) >= first.index);
    assert.equal(old.raft.stats().messagesSent.heartbeat ?? 0, sent, "served from the lease");

    // SIGSTOP: the old leader handles nothing while the others elect a leader and write.
    old.clock.pause();
    old.transport.holding = true;
    const others = nodes.filter((n) => n !== old);
    await base.advanceUntil(() => others.some((n) => n.raft.state === "leader"), 5000);
    const leader = others.find((n) => n.raft.state === "leader")!;
    const second = await base.run(leader.raft.apply(bytes("second")));
    assert.equal(old.raft.state, "leader", "the paused leader does not know yet");

    // SIGCONT: a lease read queued before the new leader's messages is handled first.
    old.clock.resume();
    const read = old.raft.readIndex({ lease: true }).then(
      (index) => ({ index, items: [...old.fsm.items] }),
      (e: Error) => e,
    );
    await base.settle();
    old.transport.release();
    const outcome = await base.run(read);
    if (outcome instanceof Error) {
      assert.ok(outcome instanceof NotLeaderError, `expected NotLeaderError, got ${outcome}`);
    } else {
      assert.ok(
        outcome.index >= second.index && outcome.items.includes("second"),
        `a lease read on the resumed old leader returned index ${outcome.index} with ${
          JSON.stringify(outcome.items)
        }, though "second" was acknowledged at ${second.index} before it was sent`,
      );
    }
    assert.notEqual(old.raft.state, "leader");
  } finally {
    await shutdown(base, nodes);
  }
});
