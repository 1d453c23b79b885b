/**
 * The simulated network: the real codec's copies on virtual time, every
 * delivery an event of the receiver's loop (held while it is paused, gone
 * when it died), partitions both ways and one way, and snapshots streamed
 * chunk by chunk at the pace of the receiver.
 */

import assert from "node:assert/strict";
import type { InstallSnapshotRequest, Message } from "../../src/core/types.ts";
import { Prng } from "./prng.ts";
import { Scheduler } from "./scheduler.ts";
import { SimNetwork } from "./sim_network.ts";

const timeoutNow = (from: string, to: string, term = 1): Message => ({
  type: "timeout_now",
  term,
  from,
  to,
});

function setup(seed = 1) {
  const s = new Scheduler();
  const rng = new Prng(seed);
  const net = new SimNetwork(s, { random: () => rng.float(), chunkDelay: (n) => 1 + n / 100 });
  return { s, net };
}

Deno.test("sim network: messages cross as codec copies after their delay, on the receiver's loop", async () => {
  const { s, net } = setup();
  net.memory.delay(10, 20);
  const a = net.transport("a", s.createLoop("a"));
  const loopB = s.createLoop("b");
  const b = net.transport("b", loopB);
  const got: Array<{ m: Message; at: number; from: string }> = [];
  let started = 0;
  // start() completes as an event of each loop: the scheduler must run for it.
  void a.start({ onMessage: () => {}, onSnapshot: async () => {} }).then(() => started++);
  void b.start({
    onMessage: (m, from) => got.push({ m, at: s.now, from }),
    onSnapshot: async () => {},
  })
    .then(() => started++);
  await s.runUntil(0);
  assert.equal(started, 2);
  const sent = timeoutNow("a", "b", 7);
  a.send("b", sent);
  await s.runUntil(100);
  assert.equal(got.length, 1);
  assert.deepEqual(got[0].m, sent);
  assert.notEqual(got[0].m, sent, "a copy through the codec, not the sender's object");
  assert.ok(got[0].at >= 10 && got[0].at <= 20, `delivered at ${got[0].at}`);
  assert.equal(got[0].from, "a");
  assert.throws(() => a.send("b", { type: "timeout_now", term: -1, from: "a", to: "b" }));
});

Deno.test("sim network: a paused receiver gets nothing until it resumes; a dead one never", async () => {
  const { s, net } = setup();
  net.memory.delay(5);
  const a = net.transport("a", s.createLoop("a"));
  const loopB = s.createLoop("b#1");
  const b = net.transport("b", loopB);
  const got: string[] = [];
  const start = (t: typeof b, tag: string) =>
    t.start({
      onMessage: (m) => got.push(`${tag} t${m.term}@${s.now}`),
      onSnapshot: async () => {},
    });
  void start(b, "b1");
  await s.runUntil(1);
  loopB.pause();
  a.send("b", timeoutNow("a", "b", 1));
  s.world.scheduleAt(50, () => loopB.resume());
  await s.runUntil(60);
  // Crash: the loop dies, the transport detaches; in-flight messages vanish.
  a.send("b", timeoutNow("a", "b", 2));
  loopB.kill();
  void b.close();
  await s.runUntil(100);
  const loopB2 = s.createLoop("b#2");
  const b2 = net.transport("b", loopB2);
  void start(b2, "b2");
  await s.runUntil(101);
  a.send("b", timeoutNow("a", "b", 3));
  await s.runUntil(200);
  assert.deepEqual(got, ["b1 t1@50", "b2 t3@106"]);
});

Deno.test("sim network: symmetric and one-way partitions, loss and duplication", async () => {
  const { s, net } = setup(3);
  net.memory.delay(1, 5);
  const got: string[] = [];
  const ts = ["a", "b", "c"].map((id) => {
    const t = net.transport(id, s.createLoop(id));
    void t.start({ onMessage: (m) => got.push(`${m.from}>${m.to}`), onSnapshot: async () => {} });
    return t;
  });
  await s.runUntil(1);
  const [a, b, c] = ts;
  net.memory.partitionOneWay("a", "b");
  net.memory.partition(["c"], ["a"]);
  a.send("b", timeoutNow("a", "b"));
  b.send("a", timeoutNow("b", "a"));
  a.send("c", timeoutNow("a", "c"));
  c.send("a", timeoutNow("c", "a"));
  c.send("b", timeoutNow("c", "b"));
  await s.runUntil(50);
  assert.deepEqual(got.sort(), ["b>a", "c>b"]);
  net.memory.heal();
  got.length = 0;
  net.memory.duplicate(1);
  a.send("b", timeoutNow("a", "b"));
  await s.runUntil(100);
  assert.deepEqual(got, ["a>b", "a>b"]);
  got.length = 0;
  net.memory.duplicate(0);
  net.memory.drop(1);
  a.send("b", timeoutNow("a", "b"));
  await s.runUntil(150);
  assert.deepEqual(got, []);
  assert.ok(net.memory.stats.dropped >= 3);
});

Deno.test("sim network: reordering lets messages overtake each other", async () => {
  const { s, net } = setup(5);
  net.memory.delay(1, 50);
  net.memory.reorder(1);
  const a = net.transport("a", s.createLoop("a"));
  const b = net.transport("b", s.createLoop("b"));
  const terms: number[] = [];
  void b.start({ onMessage: (m) => terms.push(m.term), onSnapshot: async () => {} });
  void a;
  for (let t = 1; t <= 20; t++) a.send("b", timeoutNow("a", "b", t));
  await s.runUntil(100);
  assert.equal(terms.length, 20);
  assert.notDeepEqual(terms, [...terms].sort((x, y) => x - y));
});

function snapshotMessage(from: string, to: string): InstallSnapshotRequest {
  return {
    type: "snapshot",
    term: 2,
    from,
    to,
    meta: { index: 9, term: 2, configuration: { servers: [] }, configurationIndex: 1 },
  };
}

async function* chunks(n: number, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < n; i++) yield new Uint8Array(size).fill(i);
}

Deno.test("sim network: a snapshot streams chunk by chunk at the receiver's pace; the sender learns on its loop", async () => {
  const { s, net } = setup();
  net.memory.delay(5);
  const loopA = s.createLoop("a");
  const loopB = s.createLoop("b");
  const a = net.transport("a", loopA);
  const b = net.transport("b", loopB);
  const arrivals: number[] = [];
  let bytes = 0;
  void b.start({
    onMessage: () => {},
    onSnapshot: async (m, data) => {
      assert.equal(m.meta.index, 9);
      for await (const chunk of data) {
        arrivals.push(s.now);
        bytes += chunk.length;
      }
    },
  });
  await s.runUntil(1);
  let sentAt = -1;
  loopA.schedule(0, () => {
    a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(4, 200)).then(() => sentAt = s.now);
  });
  // The receiver is paused for a while in the middle of the stream.
  s.world.scheduleAt(10, () => loopB.pause());
  s.world.scheduleAt(40, () => loopB.resume());
  await s.runUntil(200);
  assert.equal(bytes, 800);
  assert.equal(arrivals.length, 4);
  assert.deepEqual(arrivals, [9, 40, 43, 46]); // 3 ms a chunk; nothing while paused
  assert.equal(sentAt, 46);
  assert.equal(net.stats.snapshotsDelivered, 1);
  assert.equal(net.stats.snapshotChunks, 4);
});

Deno.test("sim network: a partition in the middle of a snapshot cuts it; the sender sees the failure", async () => {
  const { s, net } = setup();
  const loopA = s.createLoop("a");
  const a = net.transport("a", loopA);
  const b = net.transport("b", s.createLoop("b"));
  let receiverError = "";
  void b.start({
    onMessage: () => {},
    onSnapshot: async (_m, data) => {
      try {
        for await (const _ of data) { /* consume */ }
      } catch (e) {
        receiverError = (e as Error).message;
        throw e;
      }
    },
  });
  await s.runUntil(1);
  let senderError = "";
  loopA.schedule(0, () => {
    a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(10, 100)).catch((e) =>
      senderError = (e as Error).message
    );
  });
  s.world.scheduleAt(5, () => net.memory.partition(["a"], ["b"]));
  await s.runUntil(100);
  assert.match(receiverError, /was cut/);
  assert.match(senderError, /was cut/);
});

Deno.test("sim network: a receiver that dies or stalls mid-stream breaks the snapshot on both sides", async () => {
  for (const fault of ["dies", "stalls"] as const) {
    const s = new Scheduler();
    const net = new SimNetwork(s, {
      random: () => 0.5,
      chunkDelay: () => 10,
      snapshotStallMs: 100,
    });
    const loopA = s.createLoop("a");
    const loopB = s.createLoop("b");
    const a = net.transport("a", loopA);
    const b = net.transport("b", loopB);
    let chunksSeen = 0;
    void b.start({
      onMessage: () => {},
      onSnapshot: async (_m, data) => {
        for await (const _ of data) chunksSeen++;
      },
    });
    await s.runUntil(1);
    let senderError = "";
    loopA.schedule(0, () => {
      a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(10, 100)).catch((e) =>
        senderError = (e as Error).message
      );
    });
    s.world.scheduleAt(25, () => {
      if (fault === "dies") {
        loopB.kill();
        void b.close();
      } else {
        loopB.pause();
      }
    });
    await s.runUntil(1000);
    assert.ok(chunksSeen >= 1 && chunksSeen < 10, `${fault}: ${chunksSeen} chunks`);
    assert.match(senderError, fault === "dies" ? /reset/ : /stalled: no progress for 100 ms/);
  }
});
