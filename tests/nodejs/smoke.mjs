// Forms a three-node cluster on Node.js from the JavaScript that
// `deno task build:node` produces: TCP transport on loopback, file stores in a
// temporary directory, 100 commands replicated, a snapshot, a clean shutdown.
// Usage: node tests/nodejs/smoke.mjs DIR (the build's output directory).
// Prints `ok runtime=node nodes=3 applied=N` and exits 0 on success.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node smoke.mjs DIR (the output of deno task build:node)");
  process.exit(2);
}
const { FileLogStore, FileSnapshotStore, FileStableStore, Raft, TcpTransport } = await import(
  pathToFileURL(resolve(dir, "mod.js")).href
);

const deadline = Date.now() + 60_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class Sum {
  total = 0;
  apply(entry) {
    this.total += entry.data[0];
    return this.total;
  }
  snapshot() {
    const text = String(this.total);
    return {
      async persist(sink) {
        await sink.write(new TextEncoder().encode(text));
      },
      release() {},
    };
  }
  async restore(data) {
    let text = "";
    for await (const chunk of data) text += new TextDecoder().decode(chunk);
    this.total = Number(text);
  }
}

const root = await mkdtemp(join(tmpdir(), "raftd-node-smoke-"));
const nodes = [];
try {
  const ids = ["n1", "n2", "n3"];
  for (const id of ids) {
    const transport = await TcpTransport.listen({ address: "127.0.0.1:0" });
    const fsm = new Sum();
    const logStore = await FileLogStore.open(join(root, id, "log"));
    const stableStore = await FileStableStore.open(join(root, id, "stable"));
    const snapshotStore = await FileSnapshotStore.open(join(root, id, "snapshots"));
    const raft = await Raft.create({ id, heartbeatInterval: 50, electionTimeout: 500 }, fsm, {
      logStore,
      stableStore,
      snapshotStore,
      transport,
    });
    nodes.push({ id, raft, fsm, transport, logStore, stableStore });
  }
  const configuration = {
    servers: nodes.map((n) => ({ id: n.id, address: n.transport.localAddress, suffrage: "voter" })),
  };
  await nodes[0].raft.bootstrapCluster(configuration);
  let leader;
  while (!(leader = nodes.find((n) => n.raft.state === "leader"))) {
    if (Date.now() > deadline) throw new Error("no leader within 60 s");
    await sleep(20);
  }
  const N = 100;
  const results = await Promise.all(
    Array.from({ length: N }, () => leader.raft.apply(new Uint8Array([1]))),
  );
  assert.equal(Math.max(...results.map((r) => r.response)), N);
  const { index } = await leader.raft.barrier();
  while (!nodes.every((n) => n.raft.appliedIndex >= index)) {
    if (Date.now() > deadline) throw new Error("followers did not apply within 60 s");
    await sleep(20);
  }
  for (const n of nodes) assert.equal(n.fsm.total, N, `${n.id} applied ${n.fsm.total}`);
  const snapshot = await leader.raft.snapshot();
  assert.ok(snapshot.index >= N, `snapshot at ${snapshot.index}`);
  await assert.rejects(
    TcpTransport.listen({ address: leader.transport.localAddress }),
    (e) => e.name === "TransportError" && /address already in use$/.test(e.message),
  );
  console.log(`ok runtime=node nodes=${nodes.length} applied=${N}`);
} finally {
  await Promise.all(nodes.map((n) => n.raft.shutdown()));
  // The stores belong to the caller: a node's shutdown leaves them open.
  await Promise.all(nodes.flatMap((n) => [n.logStore.close(), n.stableStore.close()]));
  await rm(root, { recursive: true, force: true });
}
