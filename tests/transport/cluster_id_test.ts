import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import type { InstallSnapshotRequest, Message } from "../../src/core/types.ts";
import {
  clusterIdBytes,
  clusterIdFromBytes,
  type ClusterMembership,
  isClusterId,
  newClusterId,
} from "../../src/transport/cluster_id.ts";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/tcp_transport.ts";
import type { TransportHandler } from "../../src/transport/types.ts";

function hb(from: string, to: string, commit: number): Message {
  return { type: "heartbeat", term: 1, from, to, commit, context: 0 };
}

/** A membership held in memory; `adopted` lists what it was asked to adopt. */
class Membership implements ClusterMembership {
  clusterId: string | undefined;
  adopted: string[] = [];
  refuse = false;

  constructor(id?: string) {
    this.clusterId = id;
  }

  adopt(id: string): Promise<void> {
    this.adopted.push(id);
    if (this.refuse) return Promise.reject(new Error("refused by the test"));
    if (this.clusterId !== undefined && this.clusterId !== id) {
      return Promise.reject(new Error(`already in cluster ${this.clusterId}`));
    }
    this.clusterId = id;
    return Promise.resolve();
  }
}

class Inbox implements TransportHandler {
  messages: Message[] = [];
  onMessage(message: Message): void {
    this.messages.push(message);
  }
  onSnapshot(_m: InstallSnapshotRequest, _d: AsyncIterable<Uint8Array>): Promise<void> {
    return Promise.reject(new Error("unexpected snapshot"));
  }
}

async function open(options: Partial<TcpTransportOptions> = {}) {
  const transport = await TcpTransport.listen({ address: "127.0.0.1:0", ...options });
  const inbox = new Inbox();
  await transport.start(inbox);
  return { transport, inbox };
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function withLogs(fn: (text: () => string) => Promise<void>): Promise<void> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["raftd"], lowestLevel: "debug", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
  });
  try {
    await fn(() => records.map((r) => r.message.map(String).join("")).join("\n"));
  } finally {
    await reset();
  }
}

Deno.test("cluster id: text and bytes round-trip; malformed ids are refused", () => {
  const id = newClusterId();
  assert.ok(isClusterId(id));
  assert.notEqual(id, newClusterId());
  assert.equal(clusterIdFromBytes(clusterIdBytes(id)), id);
  for (const bad of ["", "ABCDEF0123456789abcdef0123456789", "0".repeat(31), "g".repeat(32)]) {
    assert.equal(isClusterId(bad), false, bad);
    assert.throws(() => clusterIdBytes(bad), /cluster id must be 32 lowercase hex digits/);
  }
  assert.throws(() => clusterIdFromBytes(new Uint8Array(3)), /has 16 bytes, got 3/);
});

Deno.test("cluster id: same cluster talks; another cluster or none is refused both ways", async () => {
  await withLogs(async (logs) => {
    const idA = newClusterId();
    const idB = newClusterId();
    const a1 = await open({ cluster: new Membership(idA) });
    const a2 = await open({ cluster: new Membership(idA) });
    const b1 = await open({ cluster: new Membership(idB) });
    const plain = await open();
    try {
      a1.transport.send(a2.transport.localAddress, hb("a1", "a2", 1));
      await until("a1 → a2", () => a2.inbox.messages.length === 1);

      // A node of cluster A dials one of B, and back: both ends refuse.
      a1.transport.send(b1.transport.localAddress, hb("a1", "b1", 1));
      b1.transport.send(a2.transport.localAddress, hb("b1", "a2", 1));
      await until("both mismatches logged", () => {
        const text = logs();
        return text.includes(`the peer to cluster ${idB}`) &&
          text.includes(`this node belongs to cluster ${idB}, the peer to cluster ${idA}`);
      });
      // A dialer that names no cluster is refused by one that has an id.
      plain.transport.send(a1.transport.localAddress, hb("p", "a1", 1));
      await until(
        "no-cluster dialer refused",
        () => logs().includes("the dialer names no cluster"),
      );
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(b1.inbox.messages.length, 0);
      assert.equal(a2.inbox.messages.length, 1);
      assert.equal(a1.inbox.messages.length, 0);

      // A transport without a membership neither sends nor checks ids.
      a1.transport.send(plain.transport.localAddress, hb("a1", "p", 1));
      await until("a1 → plain", () => plain.inbox.messages.length === 1);
    } finally {
      await Promise.all([a1, a2, b1, plain].map((x) => x.transport.close()));
    }
  });
});

Deno.test("cluster id: a fresh node adopts the first cluster that dials it, then refuses others", async () => {
  await withLogs(async (logs) => {
    const idA = newClusterId();
    const idB = newClusterId();
    const fresh = new Membership();
    const node = await open({ cluster: fresh });
    const a = await open({ cluster: new Membership(idA) });
    const b = await open({ cluster: new Membership(idB) });
    try {
      a.transport.send(node.transport.localAddress, hb("a", "n", 1));
      await until("a → fresh node", () => node.inbox.messages.length === 1);
      assert.equal(fresh.clusterId, idA);
      assert.deepEqual(fresh.adopted, [idA]);

      b.transport.send(node.transport.localAddress, hb("b", "n", 1));
      await until(
        "b refused",
        () => logs().includes(`this node belongs to cluster ${idB}, the peer to cluster ${idA}`),
      );
      assert.equal(node.inbox.messages.length, 1);

      // The node now dials with its adopted id, which A accepts.
      node.transport.send(a.transport.localAddress, hb("n", "a", 1));
      await until("fresh node → a", () => a.inbox.messages.length === 1);
    } finally {
      await Promise.all([node, a, b].map((x) => x.transport.close()));
    }
  });
});

Deno.test("cluster id: an adoption that fails refuses the connection", async () => {
  await withLogs(async (logs) => {
    const fresh = new Membership();
    fresh.refuse = true;
    const node = await open({ cluster: fresh });
    const a = await open({ cluster: new Membership(newClusterId()) });
    try {
      a.transport.send(node.transport.localAddress, hb("a", "n", 1));
      await until("refusal logged", () => logs().includes("refused by the test"));
      assert.equal(node.inbox.messages.length, 0);
      assert.equal(fresh.clusterId, undefined);
    } finally {
      await Promise.all([node, a].map((x) => x.transport.close()));
    }
  });
});

Deno.test("cluster id: with a cluster key, ids are covered by the proofs", async () => {
  const key = new TextEncoder().encode("a shared cluster secret");
  const id = newClusterId();
  const a = await open({ clusterKey: key, cluster: new Membership(id) });
  const fresh = new Membership();
  const b = await open({ clusterKey: key, cluster: fresh });
  try {
    a.transport.send(b.transport.localAddress, hb("a", "b", 1));
    await until("a → b", () => b.inbox.messages.length === 1);
    assert.equal(fresh.clusterId, id);
  } finally {
    await Promise.all([a, b].map((x) => x.transport.close()));
  }
});
