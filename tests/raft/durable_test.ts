import assert from "node:assert/strict";
import {
  type Entry,
  FileLogStore,
  FileSnapshotStore,
  FileStableStore,
  LeadershipLostError,
  type LogStore,
  Raft,
  StorageError,
} from "../../mod.ts";
import {
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
} from "../../testing.ts";
import { bytes, FAST, ListFSM, sleep } from "./_cluster.ts";

interface DiskNode {
  id: string;
  raft: Raft<number>;
  fsm: ListFSM;
  close(): Promise<void>;
}

async function startOnDisk(
  root: string,
  id: string,
  network: MemoryNetwork,
  extra: Record<string, number> = {},
): Promise<DiskNode> {
  const logStore = await FileLogStore.open(`${root}/${id}/log`, { segmentBytes: 4096 });
  const stableStore = await FileStableStore.open(`${root}/${id}/stable`);
  const snapshotStore = await FileSnapshotStore.open(`${root}/${id}/snapshots`);
  const fsm = new ListFSM();
  const raft = await Raft.create<number>({ id, ...FAST, ...extra }, fsm, {
    logStore,
    stableStore,
    snapshotStore,
    transport: network.transport(id),
  });
  return {
    id,
    raft,
    fsm,
    async close() {
      await raft.shutdown();
      await logStore.close();
      await stableStore.close();
    },
  };
}

/**
 * Poll `cond` until it holds. The deadline is only an upper bound for a
 * loaded machine (a passing run never waits for it); `seen` says what was
 * there instead when it passes.
 */
async function waitFor(
  what: string,
  cond: () => boolean | Promise<boolean>,
  seen: () => string = () => "",
  ms = 30_000,
) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(5);
  }
  const saw = seen();
  throw new Error(`timed out after ${ms} ms waiting for ${what}${saw ? `; saw ${saw}` : ""}`);
}

/** The log's segment files (not its meta file, written by a compaction that keeps a segment's tail). */
function segmentFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".seg")).sort();
}

Deno.test("file stores: stop all, start again, everything acknowledged is there", async () => {
  const root = await Deno.makeTempDir({ prefix: "raftd-durable-" });
  const ids = ["a", "b", "c"];
  let nodes: DiskNode[] = [];
  try {
    let network = new MemoryNetwork();
    nodes = await Promise.all(
      ids.map((id) => startOnDisk(root, id, network, { trailingLogs: 20 })),
    );
    await nodes[0].raft.bootstrapCluster({
      servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })),
    });
    await waitFor("leader", () => nodes.some((n) => n.raft.state === "leader"));
    let leader = nodes.find((n) => n.raft.state === "leader")!;
    const acked: string[] = [];
    for (let i = 0; i < 120; i++) {
      await leader.raft.apply(bytes(`value-${i}-${"x".repeat(40)}`));
      acked.push(`value-${i}-${"x".repeat(40)}`);
    }
    const logDir = `${root}/${leader.id}/log`;
    const segmentsBefore = segmentFiles(logDir);
    const snapshot = await leader.raft.snapshot();
    // The compaction behind the snapshot runs in the write pipeline after the
    // snapshot is taken, each step an fsync: on a loaded disk it takes a while.
    await waitFor(
      `old segments removed after the snapshot at ${snapshot.index}`,
      () => segmentFiles(logDir).length < segmentsBefore.length,
      () =>
        `${segmentFiles(logDir).join(", ")} (before: ${segmentsBefore.join(", ")}); ` +
        `raft stats ${JSON.stringify(leader.raft.stats())}`,
    );
    for (let i = 120; i < 130; i++) {
      await leader.raft.apply(bytes(`value-${i}`));
      acked.push(`value-${i}`);
    }
    const termBefore = leader.raft.currentTerm;
    for (const n of nodes) await n.close();

    network = new MemoryNetwork();
    nodes = await Promise.all(ids.map((id) => startOnDisk(root, id, network)));
    // Fast restart: committed entries are applied before any leader exists.
    await waitFor(
      "applied from disk",
      () => nodes.every((n) => n.fsm.items.length === acked.length),
    );
    await waitFor("leader again", () => nodes.some((n) => n.raft.state === "leader"));
    leader = nodes.find((n) => n.raft.state === "leader")!;
    assert.ok(leader.raft.currentTerm > termBefore);
    await leader.raft.apply(bytes("after restart"));
    acked.push("after restart");
    await waitFor("replicated", () => nodes.every((n) => n.fsm.items.length === acked.length));
    for (const n of nodes) assert.deepEqual(n.fsm.items, acked);
  } finally {
    for (const n of nodes) await n.close().catch(() => {});
    await Deno.remove(root, { recursive: true });
  }
});

/** A log store whose writes start failing on demand (a dying disk). */
class FailingLogStore extends MemoryLogStore implements LogStore {
  failing = false;
  override storeLogs(entries: Entry[]): Promise<void> {
    if (this.failing) return Promise.reject(new Error("EIO: simulated disk failure"));
    return super.storeLogs(entries);
  }
}

Deno.test("a failing disk write stops the node from acknowledging and it steps down", async () => {
  const network = new MemoryNetwork();
  const ids = ["a", "b", "c"];
  const stores = new Map(ids.map((id) => [id, new FailingLogStore()]));
  const fsms = new Map(ids.map((id) => [id, new ListFSM()]));
  const nodes = await Promise.all(
    ids.map((id) =>
      Raft.create<number>({ id, ...FAST }, fsms.get(id)!, {
        logStore: stores.get(id)!,
        stableStore: new MemoryStableStore(),
        snapshotStore: new MemorySnapshotStore(),
        transport: network.transport(id),
      })
    ),
  );
  try {
    await nodes[0].bootstrapCluster({
      servers: ids.map((id) => ({ id, address: id, suffrage: "voter" as const })),
    });
    await waitFor("leader", () => nodes.some((n) => n.state === "leader"));
    const leader = nodes.find((n) => n.state === "leader")!;
    await leader.apply(bytes("ok"));
    stores.get(leader.id)!.failing = true;
    // The follower disks still work, so entries may commit without the
    // leader's disk; what matters is the leader never reports success for a
    // write after its own store failed and then stops.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => leader.apply(bytes(`w${i}`), { timeout: 2000 })),
    );
    await waitFor("leader stopped", () => leader.state === "shutdown");
    await assert.rejects(() => leader.apply(bytes("more")), StorageError);
    const others = nodes.filter((n) => n !== leader);
    await waitFor("new leader", () => others.some((n) => n.state === "leader"));
    const next = others.find((n) => n.state === "leader")!;
    await next.apply(bytes("after"));
    // A write in flight when the disk failed was sent to the followers as it
    // was written: it may commit under the next leader, so it must never be
    // reported as failed, only as of unknown (or committed) outcome.
    const committed = new Set(fsms.get(next.id)!.items);
    let inFlight = 0;
    for (const [i, o] of outcomes.entries()) {
      if (o.status === "fulfilled") {
        assert.ok(committed.has(`w${i}`), `acknowledged w${i} is committed`);
        continue;
      }
      inFlight++;
      assert.ok(
        o.reason instanceof LeadershipLostError,
        `w${i}: expected a LeadershipLostError, got ${o.reason}`,
      );
      assert.notEqual(o.reason.outcome, "not_committed", `w${i}`);
      assert.ok(o.reason.cause instanceof StorageError, "the disk failure is the cause");
    }
    assert.ok(inFlight > 0, "some writes were in flight when the disk failed");
    assert.ok(
      outcomes.some((o, i) => o.status === "rejected" && committed.has(`w${i}`)),
      "some of them committed after all: reporting them as failed would have been a lie",
    );
  } finally {
    await Promise.all(nodes.map((n) => n.shutdown()));
  }
});
