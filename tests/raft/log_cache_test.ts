/**
 * The node's log cache (`logCacheBytes`): memory stays bounded while the log
 * grows, and entries older than the cache are read back from the log store
 * to catch a follower up and to apply a backlog after a restart.
 */

import assert from "node:assert/strict";
import { ENTRY_OVERHEAD_BYTES } from "../../src/core/log.ts";
import { FAST, TestCluster } from "./_cluster.ts";

const CACHE = 16 * 1024;
const PAYLOAD = 200;
// No snapshots: the whole log stays in the log store, and behind the cache.
const CONFIG = { ...FAST, logCacheBytes: CACHE, snapshotThreshold: 1_000_000 };

function payload(i: number): Uint8Array {
  const b = new Uint8Array(PAYLOAD);
  new DataView(b.buffer).setUint32(0, i);
  return b;
}

async function applyMany(c: TestCluster, from: number, count: number, conc: number) {
  const leader = await c.waitLeader();
  let next = from;
  const end = from + count;
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < end) await leader.raft.apply(payload(next++));
  }));
}

Deno.test("memory: the entries a node holds stay within logCacheBytes while the log grows", async () => {
  const c = new TestCluster(CONFIG);
  try {
    await c.bootstrap(["n1", "n2", "n3"]);
    const conc = 16;
    // Entries not yet durable are always held: at most the writes in flight.
    const slack = 2 * conc * (PAYLOAD + ENTRY_OVERHEAD_BYTES);
    let peak = 0;
    for (let round = 0; round < 10; round++) {
      await applyMany(c, round * 300, 300, conc);
      for (const n of c.running()) {
        const bytes = n.raft.stats().logBytesInMemory;
        peak = Math.max(peak, bytes);
        assert.ok(bytes <= CACHE + slack, `${n.id} holds ${bytes} bytes (cache ${CACHE})`);
      }
    }
    const leader = await c.waitLeader();
    assert.ok(leader.raft.lastIndex > 3000);
    // 3000 entries of 328 bytes would be ~1 MB: the cache held a small part.
    assert.ok(peak < 3000 * (PAYLOAD + ENTRY_OVERHEAD_BYTES) / 10, `peak ${peak}`);
    await c.waitFor(
      "followers applied everything",
      () => c.running().every((n) => n.raft.appliedIndex === leader.raft.appliedIndex),
    );
    for (const n of c.running()) {
      if (n === leader) continue;
      // A follower keeps nothing it has applied.
      assert.equal(n.raft.stats().logEntriesInMemory, 0, `${n.id} holds applied entries`);
    }
  } finally {
    await c.shutdown();
  }
});

Deno.test("a follower that was down catches up from the leader's log store", async () => {
  const c = new TestCluster(CONFIG);
  try {
    await c.bootstrap(["n1", "n2", "n3"]);
    const leader = await c.waitLeader();
    const down = [...c.nodes.values()].find((n) => n !== leader)!;
    await c.stop(down.id);
    await applyMany(c, 0, 1500, 16);
    const readsBefore = leader.raft.stats().logReads;
    const back = await c.start(down.id);
    await c.waitFor(
      "the restarted follower to apply everything",
      () => back.raft.appliedIndex === leader.raft.appliedIndex,
      10_000,
    );
    assert.ok(leader.raft.stats().logReads > readsBefore, "the leader read old entries back");
    assert.equal(leader.raft.stats().snapshotsTaken, 0);
    assert.equal(back.raft.stats().snapshotsInstalled, 0);
    assert.deepEqual(back.fsm.items.slice(-1500), leader.fsm.items.slice(-1500));
  } finally {
    await c.shutdown();
  }
});

Deno.test("after a full restart every node applies its committed log from storage", async () => {
  const c = new TestCluster(CONFIG);
  try {
    await c.bootstrap(["n1", "n2", "n3"]);
    await applyMany(c, 0, 1200, 16);
    const leader = await c.waitLeader();
    await c.waitFor(
      "followers applied everything",
      () => c.running().every((n) => n.raft.appliedIndex === leader.raft.appliedIndex),
    );
    const expected = leader.fsm.items.slice();
    await c.shutdown();
    for (const id of ["n1", "n2", "n3"]) await c.start(id);
    await c.waitFor(
      "every node to apply the whole log again",
      () => c.running().every((n) => n.fsm.items.length >= expected.length),
      10_000,
    );
    for (const n of c.running()) {
      assert.deepEqual(n.fsm.items.slice(0, expected.length), expected, n.id);
      assert.ok(n.raft.stats().logReads > 0, `${n.id} read its backlog from the log store`);
      assert.ok(n.raft.stats().logBytesInMemory <= CACHE + 64 * 1024);
    }
  } finally {
    await c.shutdown();
  }
});
