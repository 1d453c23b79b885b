/**
 * Bootstrapping through `Raft.create`'s `bootstrap` option: the configuration
 * is in the core before the transport delivers anything, so a peer's
 * message cannot give a founding server a term first (the whole-node
 * simulation's seed 70003813: `bootstrapCluster` after `create` then refused
 * with "node already has state").
 */

import assert from "node:assert/strict";
import { Raft } from "../../mod.ts";
import type { Configuration, Message } from "../../src/core/types.ts";
import { ConfigurationError, InvalidStateError, StorageError } from "../../src/errors.ts";
import { MemoryLogStore, MemorySnapshotStore, MemoryStableStore } from "../../src/storage/mod.ts";
import { MemoryNetwork } from "../../src/transport/mod.ts";
import type { Transport, TransportHandler } from "../../src/transport/types.ts";
import { ListFSM } from "../raft/_cluster.ts";

const founders: Configuration = {
  servers: ["n1", "n2", "n3"].map((id) => ({ id, address: id, suffrage: "voter" as const })),
};

/** A transport that hands a leader's heartbeat (term 2) to the node the moment it starts. */
class EagerPeerTransport implements Transport {
  readonly localAddress = "n1";
  started = false;
  closed = false;
  sent: Message[] = [];

  start(handler: TransportHandler): Promise<void> {
    this.started = true;
    // A heartbeat of the leader n2 already elected in term 2.
    handler.onMessage({
      type: "append",
      term: 2,
      from: "n2",
      to: "n1",
      prevIndex: 1,
      prevTerm: 1,
      entries: [],
      commit: 0,
    }, "n2");
    return Promise.resolve();
  }
  send(_address: string, message: Message): void {
    this.sent.push(message);
  }
  sendSnapshot(): Promise<void> {
    return Promise.reject(new Error("not used"));
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function stores(transport: Transport = new EagerPeerTransport()) {
  return {
    logStore: new MemoryLogStore(),
    stableStore: new MemoryStableStore(),
    snapshotStore: new MemorySnapshotStore(),
    transport,
  };
}

Deno.test("create's bootstrap is in place before a leader's heartbeat arrives", async () => {
  const s = stores();
  const raft = await Raft.create({ id: "n1" }, new ListFSM(), s, { bootstrap: founders });
  try {
    // On disk when create resolves.
    assert.equal(await s.logStore.lastIndex(), 1);
    const first = await s.logStore.getLog(1);
    assert.equal(first?.term, 1);
    assert.deepEqual(
      raft.getConfiguration().configuration.servers.map((x) => x.id),
      ["n1", "n2", "n3"],
    );
    // The heartbeat was handled after the bootstrap, and matched it.
    assert.equal(raft.currentTerm, 2);
    assert.equal(raft.leader?.id, "n2");
  } finally {
    await raft.shutdown();
  }
});

Deno.test("bootstrapCluster after create refuses once a peer gave the node a term", async () => {
  // Why the option exists: the same early heartbeat, then the old way.
  const raft = await Raft.create({ id: "n1" }, new ListFSM(), stores());
  try {
    assert.equal(raft.currentTerm, 2);
    await assert.rejects(raft.bootstrapCluster(founders), InvalidStateError);
  } finally {
    await raft.shutdown();
  }
});

Deno.test("create's bootstrap is not used on stores that hold state", async () => {
  const network = new MemoryNetwork();
  const s = stores(network.transport("n1"));
  const single: Configuration = { servers: [{ id: "n1", address: "n1", suffrage: "voter" }] };
  const first = await Raft.create({ id: "n1" }, new ListFSM(), s, { bootstrap: single });
  await first.shutdown();
  // Restarted with another configuration: the stored one stands.
  s.transport = network.transport("n1");
  const again = await Raft.create({ id: "n1" }, new ListFSM(), s, { bootstrap: founders });
  try {
    assert.equal(await s.logStore.lastIndex(), 1);
    assert.deepEqual(again.getConfiguration().configuration.servers.map((x) => x.id), ["n1"]);
  } finally {
    await again.shutdown();
  }
});

Deno.test("create rejects bad bootstrap options before it starts the transport", async () => {
  const t1 = new EagerPeerTransport();
  await assert.rejects(
    // @ts-expect-error: options must be an object
    Raft.create({ id: "n1" }, new ListFSM(), stores(t1), 5),
    { name: "TypeError", message: "create options must be an object, got number" },
  );
  const t2 = new EagerPeerTransport();
  const others: Configuration = { servers: [{ id: "n2", address: "n2", suffrage: "voter" }] };
  await assert.rejects(
    Raft.create({ id: "n1" }, new ListFSM(), stores(t2), { bootstrap: others }),
    ConfigurationError,
  );
  const t3 = new EagerPeerTransport();
  await assert.rejects(
    Raft.create({ id: "n1" }, new ListFSM(), stores(t3), { bootstrap: { servers: [] } }),
    ConfigurationError,
  );
  assert.deepEqual([t1.started, t2.started, t3.started], [false, false, false]);
});

Deno.test("create rejects, and stops the node, when the bootstrap cannot be written", async () => {
  class FailingLogStore extends MemoryLogStore {
    override storeLogs(): Promise<void> {
      return Promise.reject(new Error("EIO: the disk failed"));
    }
  }
  const transport = new EagerPeerTransport();
  const s = { ...stores(transport), logStore: new FailingLogStore() };
  await assert.rejects(
    Raft.create({ id: "n1" }, new ListFSM(), s, { bootstrap: founders }),
    StorageError,
  );
  assert.equal(transport.closed, true);
});
