/**
 * The testing entry point's cluster helper: forms a working cluster, survives
 * crashes and restarts on the nodes' stores, injects faults through the
 * network, and refuses bad options with clear errors.
 */

import assert from "node:assert/strict";
import type { FSMEntry, FSMSnapshot } from "../../mod.ts";
import { formCluster, MemoryNetwork } from "../../testing.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

class Lines {
  lines: string[] = [];
  apply(e: FSMEntry): number {
    return this.lines.push(decoder.decode(e.data));
  }
  snapshot(): FSMSnapshot {
    const text = JSON.stringify(this.lines);
    return {
      persist: async (sink) => await sink.write(encoder.encode(text)),
      release() {},
    };
  }
  async restore(data: AsyncIterable<Uint8Array>): Promise<void> {
    let text = "";
    for await (const chunk of data) text += decoder.decode(chunk);
    this.lines = JSON.parse(text);
  }
}

Deno.test("formCluster forms n voters that all follow one leader", async () => {
  await using cluster = await formCluster({ fsm: () => new Lines(), size: 5 });
  assert.deepEqual(cluster.nodes.map((n) => n.id), ["n1", "n2", "n3", "n4", "n5"]);
  const leader = cluster.leader()!;
  for (const node of cluster.nodes) {
    assert.equal(node.raft.leader?.id, leader.id);
    assert.equal(node.raft.getConfiguration().configuration.servers.length, 5);
  }
  const { index } = await leader.apply(encoder.encode("a"));
  await cluster.waitFor(
    "every node to apply",
    () => cluster.nodes.every((n) => n.raft.appliedIndex >= index),
  );
  for (const node of cluster.nodes) assert.deepEqual((node.fsm as Lines).lines, ["a"]);
});

Deno.test("a stopped leader is replaced, and a restarted node catches up from its stores", async () => {
  await using cluster = await formCluster({ fsm: () => new Lines(), ids: ["a", "b", "c"] });
  const first = cluster.leader()!;
  await first.apply(encoder.encode("before"));
  await cluster.stop(first.id);
  const second = await cluster.waitForLeader();
  assert.notEqual(second.id, first.id);
  const { index } = await second.apply(encoder.encode("after"));
  const restarted = await cluster.restart(first.id);
  await cluster.waitFor(
    "the restarted node to catch up",
    () => restarted.raft.appliedIndex >= index,
  );
  assert.deepEqual((restarted.fsm as Lines).lines, ["before", "after"]);
});

Deno.test("faults go through the cluster's network", async () => {
  const network = new MemoryNetwork({ seed: 3 });
  await using cluster = await formCluster({ fsm: () => new Lines(), network });
  assert.equal(cluster.network, network);
  const old = cluster.leader()!;
  network.isolate(old.id);
  await cluster.waitFor(
    "a leader in a newer term",
    () => cluster.leader() !== undefined && cluster.leader()!.currentTerm > old.currentTerm,
  );
  network.heal();
  await cluster.waitFor("the old leader to step down", () => old.state !== "leader");
});

Deno.test("bad options and unknown nodes get clear errors", async () => {
  await assert.rejects(
    formCluster({ fsm: 5 as never }),
    /^TypeError: options\.fsm must be a function returning a state machine, got number 5$/,
  );
  await assert.rejects(
    formCluster(null as never),
    /^TypeError: options must be an object, got null$/,
  );
  await assert.rejects(
    formCluster({ fsm: () => new Lines(), size: 0 }),
    /^RangeError: options\.size must be a positive integer, got number 0$/,
  );
  await assert.rejects(
    formCluster({ fsm: () => new Lines(), size: "3" as never }),
    /options\.size must be a positive integer, got string "3"/,
  );
  await assert.rejects(
    formCluster({ fsm: () => new Lines(), ids: ["x", "x"] }),
    /options\.ids must not repeat an id, got \["x","x"\]/,
  );
  await using cluster = await formCluster({ fsm: () => new Lines(), size: 1 });
  assert.throws(() => cluster.node("n9"), /no node "n9" in this cluster; its nodes are n1/);
  await assert.rejects(
    cluster.waitFor("the impossible", () => false, { timeout: 50 }),
    /timed out after 50 ms waiting for the impossible \(n1: leader term \d+\)/,
  );
});

Deno.test("a cluster that cannot elect fails within the timeout and leaves nothing running", async () => {
  const network = new MemoryNetwork();
  network.drop(1);
  await assert.rejects(
    formCluster({ fsm: () => new Lines(), network, timeout: 300 }),
    /timed out after 300 ms waiting for a leader/,
  );
  // Its transports were closed: their addresses can be attached again.
  network.transport("n1");
  await network.close();
});
