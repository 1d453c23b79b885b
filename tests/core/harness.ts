/**
 * A small, fully controlled cluster of pure Raft cores for scenario tests:
 * messages wait in one FIFO queue until delivered, storage is synchronous,
 * and each node's election timeout is fixed by the test, so a scenario plays
 * out exactly as written.
 *
 * @module
 */

import { encodeConfiguration } from "../../src/core/membership.ts";
import {
  type CoreInitialState,
  type CoreOptions,
  type LogLoad,
  RaftCore,
  type Ready,
} from "../../src/core/raft_core.ts";
import {
  type Configuration,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  type ReadState,
  type SnapshotMeta,
} from "../../src/core/types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Payload of a test entry, so equal (index, term) pairs carry equal data.
 *
 * @example
 * ```ts
 * import { payload, text } from "./harness.ts";
 * console.log(text(payload("x"))); // "x"
 * ```
 */
export function payload(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Text of a payload made by {@linkcode payload}.
 *
 * @example
 * ```ts
 * import { text } from "./harness.ts";
 * console.log(text(new TextEncoder().encode("y"))); // "y"
 * ```
 */
export function text(data: Uint8Array): string {
  return decoder.decode(data);
}

/** Default settings of a test core (overridable per cluster). */
export const TEST_OPTIONS: Omit<CoreOptions, "id" | "random"> = {
  electionTicks: 10,
  heartbeatTicks: 1,
  leaseTicks: 8,
  preVote: true,
  checkQuorum: true,
  maxAppendEntries: 64,
  maxAppendBytes: 1 << 20,
  maxInflight: 8,
  catchupMargin: 5,
  autoPromoteNonvoters: false,
  maxApplyBatch: 1024,
};

/**
 * A voter configuration of `ids`.
 *
 * @example
 * ```ts
 * import { votersOf } from "./harness.ts";
 * console.log(votersOf(["n1"]).servers[0].suffrage); // "voter"
 * ```
 */
export function votersOf(ids: readonly string[]): Configuration {
  return { servers: ids.map((id) => ({ id, address: `addr-${id}`, suffrage: "voter" as const })) };
}

/** What one test node's disk holds. */
export interface TestDisk {
  hardState: HardState | undefined;
  snapshot: { meta: SnapshotMeta; data: string[] } | undefined;
  entries: Entry[];
}

/**
 * One node of a {@linkcode Cluster}: a core, its disk and what it applied.
 *
 * @example
 * ```ts
 * import { TestNode } from "./harness.ts";
 * const node = new TestNode("n1", {}, { entries: [] });
 * console.log(node.core.state); // "follower"
 * ```
 */
export class TestNode {
  core: RaftCore;
  /** Position of the election timeout in [electionTicks, 2 electionTicks): 0 is the earliest. */
  timeout = 0.99;
  /** Durable state. */
  disk: TestDisk = { hardState: undefined, snapshot: undefined, entries: [] };
  /** Payloads of the Normal entries applied, in order (the "FSM"). */
  applied: string[] = [];
  /** Index of the last applied entry. */
  appliedIndex = 0;
  /** Read states released to this node. */
  readStates: ReadState[] = [];
  /** Reads dropped on this node. */
  droppedReads: number[] = [];
  /** Snapshots installed from a leader. */
  installs: SnapshotMeta[] = [];
  /** Snapshot data by index (local and received). */
  snapshotData = new Map<number, string[]>();
  /**
   * A stalled disk: Readies are taken and their messages sent (as a driver
   * may), but nothing reaches the disk and nothing is advanced, until a crash.
   */
  stalled = false;
  /**
   * Reads of older entries (`Ready.loads`): answered from the disk at once
   * (`"auto"`), or kept in `loads` for the test to answer (`"manual"`).
   */
  loadMode: "auto" | "manual" = "auto";
  /** Loads asked and not yet answered (manual mode). */
  loads: LogLoad[] = [];
  /** Loads asked so far. */
  loadsAsked = 0;
  /** The options this node was made with (a restart reuses them). */
  readonly options: Partial<CoreOptions>;

  constructor(readonly id: string, options: Partial<CoreOptions>, initial: CoreInitialState) {
    this.options = options;
    this.core = new RaftCore(
      { ...TEST_OPTIONS, ...options, id, random: () => this.timeout },
      initial,
    );
    this.appliedIndex = this.core.appliedIndex;
    this.disk.entries = (initial.entries ?? []).slice();
    this.disk.hardState = initial.hardState;
  }
}

/**
 * A cluster of test nodes and the network between them.
 *
 * @example
 * ```ts
 * import { Cluster } from "./harness.ts";
 * const c = Cluster.bootstrap(["n1", "n2", "n3"]);
 * c.elect("n1");
 * console.log(c.core("n1").state); // "leader"
 * ```
 */
export class Cluster {
  readonly nodes = new Map<string, TestNode>();
  /** Messages sent and not yet delivered, in order. */
  queue: Message[] = [];
  /** Directed links that drop messages ("a>b"). */
  readonly blocked = new Set<string>();
  /** Optional rewrite of each message before delivery; return undefined to drop it. */
  transform: ((m: Message) => Message | undefined) | undefined;
  /** Every message delivered, for assertions. */
  readonly delivered: Message[] = [];

  /** A fresh cluster whose `voters` all bootstrap the same configuration; `spares` start empty. */
  static bootstrap(
    voters: readonly string[],
    options: Partial<CoreOptions> = {},
    spares: readonly string[] = [],
  ): Cluster {
    const c = new Cluster();
    for (const id of voters) {
      const node = c.add(id, { entries: [] }, options);
      node.core.bootstrap(votersOf(voters));
    }
    for (const id of spares) c.add(id, { entries: [] }, options);
    c.flush();
    return c;
  }

  /** Add a node started from `initial`. */
  add(id: string, initial: CoreInitialState, options: Partial<CoreOptions> = {}): TestNode {
    const node = new TestNode(id, options, initial);
    this.nodes.set(id, node);
    return node;
  }

  /**
   * Crash node `id` and start it again from its disk: everything not written
   * (a stalled disk's Readies, the in-memory state) is lost.
   */
  crash(id: string): TestNode {
    const old = this.node(id);
    const disk = old.disk;
    const node = new TestNode(id, old.options, {
      hardState: disk.hardState ? { ...disk.hardState } : undefined,
      snapshot: disk.snapshot?.meta,
      entries: disk.entries.slice(),
    });
    node.disk = {
      hardState: disk.hardState,
      snapshot: disk.snapshot,
      entries: disk.entries.slice(),
    };
    if (disk.snapshot) {
      node.snapshotData.set(disk.snapshot.meta.index, disk.snapshot.data);
      node.applied = disk.snapshot.data.slice();
    }
    node.timeout = old.timeout;
    this.nodes.set(id, node);
    return node;
  }

  /** The node `id`. */
  node(id: string): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** The core of node `id`. */
  core(id: string): RaftCore {
    return this.node(id).core;
  }

  /** Drop every message between `id` and the others, both ways. */
  isolate(id: string): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.blocked.add(`${id}>${other}`);
      this.blocked.add(`${other}>${id}`);
    }
  }

  /** Split the cluster: no message crosses between `a` and `b`. */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        this.blocked.add(`${x}>${y}`);
        this.blocked.add(`${y}>${x}`);
      }
    }
  }

  /** Remove every partition. */
  heal(): void {
    this.blocked.clear();
  }

  /** Carry out every Ready of every node (synchronous storage); messages go to the queue. */
  flush(): void {
    for (;;) {
      let any = false;
      for (const node of this.nodes.values()) {
        while (node.core.hasReady()) {
          any = true;
          this.#handle(node, node.core.ready());
        }
      }
      if (!any) return;
    }
  }

  #handle(node: TestNode, rd: Ready): void {
    if (node.stalled) {
      for (const m of rd.messages) this.queue.push(m);
      return;
    }
    const disk = node.disk;
    if (rd.snapshot) {
      const data = node.snapshotData.get(rd.snapshot.index);
      if (!data) throw new Error(`${node.id}: no data for snapshot ${rd.snapshot.index}`);
      node.applied = data.slice();
      node.appliedIndex = rd.snapshot.index;
      node.installs.push(rd.snapshot);
      disk.snapshot = { meta: rd.snapshot, data };
      disk.entries = [];
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      disk.entries = disk.entries.filter((e) => e.index < first).concat(rd.entries);
    }
    if (rd.hardState) disk.hardState = { ...rd.hardState };
    for (const e of rd.committed) {
      if (e.index !== node.appliedIndex + 1) {
        throw new Error(`${node.id}: applies ${e.index} after ${node.appliedIndex}`);
      }
      node.appliedIndex = e.index;
      if (e.type === EntryType.Normal) node.applied.push(text(e.data));
    }
    node.readStates.push(...rd.readStates);
    node.droppedReads.push(...rd.droppedReads);
    for (const m of rd.messages) this.queue.push(m);
    node.core.advance(rd);
    node.core.appliedTo(node.appliedIndex);
    node.loadsAsked += rd.loads.length;
    for (const load of rd.loads) {
      if (node.loadMode === "manual") node.loads.push(load);
      else node.core.loaded(load.id, readLoad(node.disk, load));
    }
  }

  /**
   * Answer node `id`'s oldest pending load (manual mode) with what its disk
   * holds now, or with `entries` when given. Returns the load.
   */
  answerLoad(id: string, entries?: Entry[]): LogLoad {
    const node = this.node(id);
    const load = node.loads.shift();
    if (!load) throw new Error(`${id} has no pending load`);
    node.core.loaded(load.id, entries ?? readLoad(node.disk, load));
    return load;
  }

  /** Deliver the queued messages once (new ones wait for the next round). Returns how many were delivered. */
  deliver(): number {
    const batch = this.queue;
    this.queue = [];
    let n = 0;
    for (const original of batch) {
      if (this.blocked.has(`${original.from}>${original.to}`)) {
        this.#dropped(original);
        continue;
      }
      const m = this.transform ? this.transform(original) : original;
      const to = this.nodes.get(original.to);
      if (!m || !to) {
        this.#dropped(original);
        continue;
      }
      if (m.type === "snapshot") {
        const data = this.nodes.get(m.from)?.snapshotData.get(m.meta.index);
        if (!data) throw new Error(`${m.from} sent snapshot ${m.meta.index} without data`);
        to.snapshotData.set(m.meta.index, data.slice());
      }
      this.delivered.push(m);
      to.core.step(m);
      n++;
      if (m.type === "snapshot") this.nodes.get(m.from)?.core.reportSnapshot(m.to, true);
    }
    return n;
  }

  #dropped(m: Message): void {
    if (m.type === "snapshot") this.nodes.get(m.from)?.core.reportSnapshot(m.to, false);
  }

  /** Flush and deliver until no message is left (at most `rounds` rounds). */
  stabilize(rounds = 100): void {
    for (let i = 0; i < rounds; i++) {
      this.flush();
      if (this.queue.length === 0) return;
      this.deliver();
    }
    this.flush();
  }

  /** Tick the given nodes (default: all) `n` times, stabilizing after each tick. */
  tick(n = 1, ids: readonly string[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) this.node(id).core.tick();
      this.stabilize();
    }
  }

  /** Give `id` the earliest election timeout and every other node the latest. */
  favor(id: string): void {
    for (const node of this.nodes.values()) {
      node.timeout = node.id === id ? 0 : 0.99;
      // Draw the randomized timeout again from the new position.
      node.core.reconfigure({});
    }
  }

  /**
   * Make `id` win an election: it gets the earliest election timeout, every
   * other node the latest, and time passes until it leads.
   */
  elect(id: string, maxTicks = 200): void {
    this.favor(id);
    for (let i = 0; i < maxTicks; i++) {
      if (this.core(id).state === "leader") return;
      this.tick(1);
    }
    throw new Error(
      `${id} did not become leader in ${maxTicks} ticks (state ${this.core(id).state})`,
    );
  }

  /** Propose `payloads` on `id` (which must lead) and replicate. */
  propose(id: string, ...payloads: string[]): { index: number; term: number } {
    const r = this.core(id).propose(payloads.map(payload));
    this.stabilize();
    // Followers learn a new commit index from the next append or heartbeat.
    this.tick(TEST_OPTIONS.heartbeatTicks);
    return r;
  }

  /**
   * Take a local snapshot of `id` at its applied index and compact its log,
   * keeping `keep` entries behind the snapshot.
   */
  snapshot(id: string, keep = 0): SnapshotMeta {
    const node = this.node(id);
    const core = node.core;
    const index = node.appliedIndex;
    const conf = core.configurationAt(index);
    const meta: SnapshotMeta = {
      index,
      term: core.termAt(index)!,
      configuration: conf.configuration,
      configurationIndex: conf.index,
    };
    const data = node.applied.slice();
    node.snapshotData.set(index, data);
    node.disk.snapshot = { meta, data };
    core.snapshotTaken(meta);
    const to = Math.min(index - keep, core.compactionFloor());
    core.compact(to);
    node.disk.entries = node.disk.entries.filter((e) => e.index > to);
    return meta;
  }

  /** Terms of `id`'s log from its first held index to its last. */
  terms(id: string): number[] {
    const core = this.core(id);
    const out: number[] = [];
    for (let i = core.firstIndex; i <= core.lastIndex; i++) out.push(core.termAt(i)!);
    return out;
  }

  /** The leaders among the nodes. */
  leaders(): string[] {
    return [...this.nodes.values()].filter((n) => n.core.state === "leader").map((n) => n.id);
  }
}

/**
 * What a log store would return for `load` from `disk`: the stored entries
 * of `lo..hi`, about `maxBytes` of data at most (at least one).
 *
 * @example
 * ```ts
 * import { logOf, readLoad } from "./harness.ts";
 * const disk = { hardState: undefined, snapshot: undefined, entries: logOf(["n1"], [1, 1, 2]) };
 * console.log(readLoad(disk, { id: 1, lo: 2, hi: 3, maxBytes: 1 }).length); // 1
 * ```
 */
export function readLoad(disk: TestDisk, load: LogLoad): Entry[] {
  const out: Entry[] = [];
  let bytes = 0;
  for (const e of disk.entries) {
    if (e.index < load.lo || e.index > load.hi) continue;
    bytes += e.data.byteLength;
    if (out.length > 0 && bytes > load.maxBytes) break;
    out.push(e);
  }
  return out;
}

/**
 * Build a log from a list of terms: entry 1 is the configuration of
 * `voters` (term 1), then one Normal entry per further term, whose payload
 * names its index and term.
 *
 * @example
 * ```ts
 * import { logOf } from "./harness.ts";
 * console.log(logOf(["n1"], [1, 2, 2]).map((e) => e.term)); // [1, 2, 2]
 * ```
 */
export function logOf(voters: readonly string[], terms: readonly number[]): Entry[] {
  if (terms[0] !== 1) throw new Error("the first entry (the configuration) has term 1");
  const out: Entry[] = [
    {
      index: 1,
      term: 1,
      type: EntryType.Configuration,
      data: encodeConfiguration(votersOf(voters)),
    },
  ];
  for (let i = 1; i < terms.length; i++) {
    out.push({
      index: i + 1,
      term: terms[i],
      type: EntryType.Normal,
      data: payload(`${i + 1}/${terms[i]}`),
    });
  }
  return out;
}
