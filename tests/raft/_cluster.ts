/**
 * Test helpers: an in-process cluster of real `Raft` nodes over memory
 * stores and the memory network, with a small KV-ish FSM.
 *
 * @module
 */

import { type Config, type FSMEntry, type FSMSnapshot, Raft } from "../../mod.ts";
import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../../src/storage/mod.ts";
import { MemoryNetwork } from "../../src/transport/mod.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Appends every applied command to a list; snapshot = the list as JSON. */
export class ListFSM {
  items: string[] = [];
  applied: number[] = [];
  apply(e: FSMEntry): number {
    this.items.push(decoder.decode(e.data));
    this.applied.push(e.index);
    return this.items.length;
  }
  snapshot(): FSMSnapshot {
    const text = JSON.stringify(this.items);
    return {
      async persist(sink) {
        const bytes = encoder.encode(text);
        // Several chunks, to exercise streaming.
        for (let i = 0; i < bytes.length; i += 7) await sink.write(bytes.subarray(i, i + 7));
      },
      release() {},
    };
  }
  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of data) parts.push(c.slice());
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    this.items = all.length ? JSON.parse(decoder.decode(all)) : [];
    this.applied = [];
  }
}

/** One node's pieces, kept across restarts. */
export interface TestNode {
  id: string;
  raft: Raft<number>;
  fsm: ListFSM;
  logStore: MemoryLogStore;
  stableStore: MemoryStableStore;
  snapshotStore: MemorySnapshotStore;
}

/** Fast timings for tests. */
export const FAST: Omit<Config, "id"> = { heartbeatInterval: 10, electionTimeout: 100 };

/** A set of nodes on one memory network. */
export class TestCluster {
  network = new MemoryNetwork({ seed: 7 });
  nodes = new Map<string, TestNode>();
  config: Omit<Config, "id">;
  /** Makes the log store of a new node (a test may hand out one that misbehaves). */
  newLogStore: (id: string) => MemoryLogStore = () => new MemoryLogStore();

  constructor(config: Omit<Config, "id"> = {}) {
    this.config = { ...FAST, ...config };
  }

  async start(id: string, extra: Omit<Config, "id"> = {}): Promise<TestNode> {
    const old = this.nodes.get(id);
    const fsm = new ListFSM();
    const logStore = old?.logStore ?? this.newLogStore(id);
    const stableStore = old?.stableStore ?? new MemoryStableStore();
    // The node's retainSnapshots decides how many are kept, not the store.
    const snapshotStore = old?.snapshotStore ?? new MemorySnapshotStore({ retain: 100 });
    const raft = await Raft.create<number>({ id, ...this.config, ...extra }, fsm, {
      logStore,
      stableStore,
      snapshotStore,
      transport: this.network.transport(id),
    });
    const node = { id, raft, fsm, logStore, stableStore, snapshotStore };
    this.nodes.set(id, node);
    return node;
  }

  /** Start `ids` and bootstrap them as voters from the first. */
  async bootstrap(ids: string[]): Promise<void> {
    for (const id of ids) await this.start(id);
    await this.nodes.get(ids[0])!.raft.bootstrapCluster({
      servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })),
    });
    // The others learn the configuration from the leader's log.
    await this.waitLeader();
  }

  running(): TestNode[] {
    return [...this.nodes.values()].filter((n) => n.raft.state !== "shutdown");
  }

  /**
   * The one leader among the running nodes. The default deadline covers
   * several elections of this cluster's timeout (randomised up to twice it),
   * so a cluster with a long timeout is not failed by a short fixed wait.
   */
  async waitLeader(
    timeoutMs = Math.max(5000, 6 * (this.config.electionTimeout ?? FAST.electionTimeout!)),
  ): Promise<TestNode> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const leaders = this.running().filter((n) => n.raft.state === "leader");
      if (leaders.length === 1) return leaders[0];
      await sleep(5);
    }
    throw new Error(`no single leader within ${timeoutMs} ms`);
  }

  async waitFor(
    what: string,
    cond: () => boolean | Promise<boolean>,
    timeoutMs = 5000,
  ): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await cond()) return;
      await sleep(5);
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  async stop(id: string): Promise<void> {
    await this.nodes.get(id)?.raft.shutdown();
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.running().map((n) => n.raft.shutdown()));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function bytes(s: string): Uint8Array {
  return encoder.encode(s);
}
