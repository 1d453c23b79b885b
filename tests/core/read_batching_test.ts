/**
 * What reads cost in messages: ReadIndex reads share heartbeat rounds (at
 * most one read round in flight), and lease reads need none.
 */

import assert from "node:assert/strict";
import { Cluster } from "./harness.ts";

const THREE = ["n1", "n2", "n3"];

function heartbeatsSentBy(c: Cluster, id: string): number {
  return c.delivered.filter((m) => m.type === "heartbeat" && m.from === id).length +
    c.queue.filter((m) => m.type === "heartbeat" && m.from === id).length;
}

function readyCluster(): Cluster {
  const c = Cluster.bootstrap(THREE);
  c.elect("n1");
  c.propose("n1", "v1");
  return c;
}

Deno.test("reads arriving together share one heartbeat round", () => {
  const c = readyCluster();
  const leader = c.core("n1");
  const before = heartbeatsSentBy(c, "n1");
  for (let id = 1; id <= 50; id++) leader.readIndex(id);
  c.stabilize();
  assert.equal(heartbeatsSentBy(c, "n1") - before, 2, "one round: one heartbeat per follower");
  assert.deepEqual(
    c.node("n1").readStates.map((r) => r.id),
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
});

Deno.test("reads arriving while a read round is in flight wait for it, then share the next", () => {
  const c = readyCluster();
  const leader = c.core("n1");
  const before = heartbeatsSentBy(c, "n1");
  leader.readIndex(1);
  c.flush(); // round A goes out
  assert.equal(heartbeatsSentBy(c, "n1") - before, 2);
  for (let id = 2; id <= 40; id++) {
    leader.readIndex(id);
    c.flush();
  }
  assert.equal(heartbeatsSentBy(c, "n1") - before, 2, "no new round while round A is unanswered");
  assert.deepEqual(c.node("n1").readStates, []);
  c.stabilize(); // A answered, confirming read 1; then one round B for reads 2..40
  assert.equal(heartbeatsSentBy(c, "n1") - before, 4, "two rounds for 40 reads");
  assert.deepEqual(
    c.node("n1").readStates.map((r) => r.id),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  // A read is only confirmed by a round sent after it arrived.
  for (const rs of c.node("n1").readStates) assert.equal(rs.index, leader.commitIndex);
});

Deno.test("a lost read round does not stall later reads: the next tick's round confirms them", () => {
  const c = readyCluster();
  const leader = c.core("n1");
  c.transform = (m) => (m.type === "heartbeat_resp" ? undefined : m); // every answer is lost
  leader.readIndex(1);
  c.stabilize();
  leader.readIndex(2);
  c.stabilize();
  assert.deepEqual(c.node("n1").readStates, []);
  c.transform = undefined;
  c.tick(1);
  assert.deepEqual(c.node("n1").readStates.map((r) => r.id), [1, 2]);
});

Deno.test("leaseReadPoint: the commit index while the lease holds, nothing otherwise", () => {
  const c = readyCluster();
  const leader = c.core("n1");
  c.tick(1); // a heartbeat round acknowledged by a quorum
  const point = leader.leaseReadPoint();
  assert.equal(point?.index, leader.commitIndex);
  assert.ok((point?.leaseRound ?? 0) >= 1, "it names the round the lease rests on");
  assert.equal(c.core("n2").leaseReadPoint(), undefined, "a follower serves no lease reads");
  const messages = c.queue.length;
  leader.leaseReadPoint();
  assert.equal(leader.hasReady(), false, "asking changes nothing");
  assert.equal(c.queue.length, messages);

  c.isolate("n1");
  c.tick(10, ["n1"]); // the followers' answers stop: the lease runs out by ticks
  if (leader.state === "leader") assert.equal(leader.leaseReadPoint(), undefined);
});

Deno.test("leaseReadPoint: a lone voter serves at its commit index without a lease", () => {
  const c = Cluster.bootstrap(["solo"]);
  c.elect("solo");
  const { index } = c.propose("solo", "one");
  assert.deepEqual(c.core("solo").leaseReadPoint(), { index });
});
