import assert from "node:assert/strict";
import type { InstallSnapshotRequest, Message } from "../../src/core/types.ts";
import { EntryType } from "../../src/core/types.ts";
import { SnapshotRejectedError, TransportError } from "../../src/transport/errors.ts";
import {
  MemoryNetwork,
  type MemoryTransport,
  seededRandom,
} from "../../src/transport/memory_transport.ts";
import type { TransportHandler } from "../../src/transport/types.ts";

function hb(from: string, to: string, commit: number): Message {
  return { type: "heartbeat", term: 1, from, to, commit, context: 0 };
}

function sink(): { handler: TransportHandler; messages: Message[] } {
  const messages: Message[] = [];
  return {
    messages,
    handler: {
      onMessage: (m, from) => {
        assert.equal(from, m.from, "the sender's address (tests use ids as addresses)");
        messages.push(m);
      },
      onSnapshot: async () => {},
    },
  };
}

async function settle(ms = 0): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await settle(5);
  assert.ok(condition(), `timed out waiting for ${what}`);
}

function commits(messages: Message[]): number[] {
  return messages.map((m) => (m.type === "heartbeat" ? m.commit : -1));
}

Deno.test("memory: delivers asynchronously, in order per sender, as copies", async () => {
  const net = new MemoryNetwork();
  const a = net.transport("a");
  const b = net.transport("b");
  const { handler, messages } = sink();
  await b.start(handler);
  const data = new Uint8Array([1, 2, 3]);
  a.send("b", {
    type: "append",
    term: 1,
    from: "a",
    to: "b",
    prevIndex: 0,
    prevTerm: 0,
    commit: 0,
    entries: [{ index: 1, term: 1, type: EntryType.Normal, data }],
  });
  for (let i = 0; i < 100; i++) a.send("b", hb("a", "b", i));
  assert.equal(messages.length, 0, "not delivered synchronously");
  data[0] = 99; // the sender reuses its buffer
  await settle();
  assert.equal(messages.length, 101);
  const first = messages[0];
  assert.ok(first.type === "append");
  assert.deepEqual([...first.entries[0].data], [1, 2, 3]);
  assert.deepEqual(commits(messages.slice(1)), Array.from({ length: 100 }, (_, i) => i));
  assert.equal(net.stats.delivered, 101);
  await net.close();
});

Deno.test("memory: unknown, unstarted and closed receivers drop", async () => {
  const net = new MemoryNetwork();
  const a = net.transport("a");
  const b = net.transport("b");
  a.send("nobody", hb("a", "nobody", 1));
  a.send("b", hb("a", "b", 1)); // b not started
  await settle();
  assert.equal(net.stats.dropped, 2);
  const { handler, messages } = sink();
  await b.start(handler);
  await b.close();
  a.send("b", hb("a", "b", 2));
  await settle();
  assert.equal(messages.length, 0);
  assert.throws(() => net.transport("a"), /already in use/);
  // A closed transport's address can be reused (a restart).
  const b2 = net.transport("b");
  const s2 = sink();
  await b2.start(s2.handler);
  a.send("b", hb("a", "b", 3));
  await settle();
  assert.deepEqual(commits(s2.messages), [3]);
  await net.close();
});

Deno.test("memory: drop(1) loses everything, drop(p) is deterministic per seed", async () => {
  async function run(seed: number): Promise<number[]> {
    const net = new MemoryNetwork({ seed });
    const a = net.transport("a");
    const b = net.transport("b");
    const { handler, messages } = sink();
    await b.start(handler);
    net.drop(0.5);
    for (let i = 0; i < 200; i++) a.send("b", hb("a", "b", i));
    await settle();
    await net.close();
    return commits(messages);
  }
  const first = await run(42);
  assert.deepEqual(await run(42), first);
  assert.notDeepEqual(await run(43), first);
  assert.ok(first.length > 50 && first.length < 150, `about half delivered: ${first.length}`);

  const net = new MemoryNetwork();
  const a = net.transport("a");
  const b = net.transport("b");
  const { handler, messages } = sink();
  await b.start(handler);
  net.drop(1);
  for (let i = 0; i < 10; i++) a.send("b", hb("a", "b", i));
  await settle();
  assert.equal(messages.length, 0);
  net.reset();
  a.send("b", hb("a", "b", 10));
  await settle();
  assert.deepEqual(commits(messages), [10]);
  await net.close();
});

Deno.test("memory: delay keeps per-sender order; reorder lets messages overtake", async () => {
  async function run(reorder: boolean): Promise<number[]> {
    const net = new MemoryNetwork({ seed: 9 });
    const a = net.transport("a");
    const b = net.transport("b");
    const { handler, messages } = sink();
    await b.start(handler);
    net.delay(0, 8);
    if (reorder) net.reorder(0.5);
    for (let i = 0; i < 100; i++) a.send("b", hb("a", "b", i));
    assert.equal(messages.length, 0);
    await until(() => messages.length === 100, "100 messages");
    await net.close();
    return commits(messages);
  }
  const ordered = await run(false);
  assert.deepEqual(ordered, Array.from({ length: 100 }, (_, i) => i));
  const shuffled = await run(true);
  assert.deepEqual([...shuffled].sort((x, y) => x - y), ordered, "nothing lost");
  assert.notDeepEqual(shuffled, ordered, "some messages overtook others");
});

Deno.test("memory: duplicate(1) delivers every message twice", async () => {
  const net = new MemoryNetwork();
  const a = net.transport("a");
  const b = net.transport("b");
  const { handler, messages } = sink();
  await b.start(handler);
  net.duplicate(1);
  for (let i = 0; i < 5; i++) a.send("b", hb("a", "b", i));
  await settle();
  assert.deepEqual(commits(messages), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
  assert.notEqual(messages[0], messages[1], "independent copies");
  assert.equal(net.stats.duplicated, 5);
  await net.close();
});

Deno.test("memory: partitions (symmetric, one-way, isolation) and heal", async () => {
  const net = new MemoryNetwork();
  const names = ["a", "b", "c"];
  const transports = new Map<string, MemoryTransport>();
  const inbox = new Map<string, Message[]>();
  for (const n of names) {
    const t = net.transport(n);
    const { handler, messages } = sink();
    await t.start(handler);
    transports.set(n, t);
    inbox.set(n, messages);
  }
  const everyone = async () => {
    for (const from of names) {
      for (const to of names) if (from !== to) transports.get(from)!.send(to, hb(from, to, 0));
    }
    await settle();
    const got = new Map<string, string[]>();
    for (const n of names) {
      got.set(n, inbox.get(n)!.map((m) => m.from).sort());
      inbox.get(n)!.length = 0;
    }
    return Object.fromEntries(got);
  };

  net.partition(["a"], ["b", "c"]);
  assert.deepEqual(await everyone(), { a: [], b: ["c"], c: ["b"] });
  net.heal();
  net.partitionOneWay("a", "b");
  assert.deepEqual(await everyone(), { a: ["b", "c"], b: ["c"], c: ["a", "b"] });
  net.heal();
  net.isolate("c");
  assert.deepEqual(await everyone(), { a: ["b"], b: ["a"], c: [] });
  assert.equal(net.connected("c", "a"), false);
  net.heal();
  assert.deepEqual(await everyone(), { a: ["b", "c"], b: ["a", "c"], c: ["a", "b"] });
  await net.close();
});

Deno.test("memory: a partition also cuts messages already in flight", async () => {
  const net = new MemoryNetwork();
  const a = net.transport("a");
  const b = net.transport("b");
  const { handler, messages } = sink();
  await b.start(handler);
  net.delay(5);
  a.send("b", hb("a", "b", 1));
  net.partition(["a"], ["b"]);
  await settle(20);
  assert.equal(messages.length, 0);
  await net.close();
});

Deno.test("memory: closing cancels pending delayed deliveries", async () => {
  const net = new MemoryNetwork();
  const a = net.transport("a");
  const b = net.transport("b");
  const { handler, messages } = sink();
  await b.start(handler);
  net.delay(1000);
  net.reorder(0.5);
  for (let i = 0; i < 10; i++) a.send("b", hb("a", "b", i));
  await b.close(); // would leak 1 s timers otherwise (the test sanitizer checks)
  assert.equal(messages.length, 0);
  assert.equal(net.stats.dropped, 10);
  await net.close();
});

function snapshotMessage(from: string, to: string): InstallSnapshotRequest {
  return {
    type: "snapshot",
    term: 2,
    from,
    to,
    meta: {
      index: 10,
      term: 2,
      configurationIndex: 1,
      configuration: { servers: [{ id: to, address: to, suffrage: "voter" }] },
    },
  };
}

async function* chunks(count: number, size: number): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(size);
  for (let i = 0; i < count; i++) {
    buf.fill(i);
    yield buf; // reused on purpose: the transport must copy
  }
}

Deno.test("memory: snapshots stream through chunk by chunk", async () => {
  const net = new MemoryNetwork();
  const a = net.transport("a");
  const b = net.transport("b");
  const received: number[] = [];
  let meta: InstallSnapshotRequest | undefined;
  let sender = "";
  await b.start({
    onMessage: () => {},
    onSnapshot: async (m, data, from) => {
      meta = m;
      sender = from;
      for await (const chunk of data) {
        await settle();
        received.push(chunk[0], chunk.length);
      }
    },
  });
  await a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(4, 1000));
  assert.deepEqual(received, [0, 1000, 1, 1000, 2, 1000, 3, 1000]);
  assert.deepEqual(meta, snapshotMessage("a", "b"));
  assert.equal(sender, "a");
  await net.close();
});

Deno.test("memory: snapshot failures reject the sender", async () => {
  const net = new MemoryNetwork();
  const a = net.transport("a");
  const b = net.transport("b");
  await assert.rejects(
    a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(1, 1)),
    TransportError,
  );
  let cut = false;
  await b.start({
    onMessage: () => {},
    onSnapshot: async (m, data) => {
      if (m.meta.index === 10 && m.term === 3) throw new Error("disk full");
      for await (const _ of data) {
        if (!cut) {
          cut = true;
          net.partition(["a"], ["b"]);
        }
      }
    },
  });
  await assert.rejects(
    a.sendSnapshot("b", { ...snapshotMessage("a", "b"), term: 3 }, chunks(2, 10)),
    (e: unknown) => e instanceof SnapshotRejectedError && /disk full/.test(e.message),
  );
  await assert.rejects(
    a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(3, 10)),
    (e: unknown) =>
      e instanceof TransportError && !(e instanceof SnapshotRejectedError) &&
      /cut/.test(e.message),
  );
  await assert.rejects(
    a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(1, 1)),
    /unreachable/,
  );
  net.heal();
  net.drop(1);
  await assert.rejects(a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(1, 1)), /lost/);
  await net.close();
  await assert.rejects(a.sendSnapshot("b", snapshotMessage("a", "b"), chunks(1, 1)), /closed/);
});

Deno.test("memory: an injected clock and random source drive delivery", async () => {
  let now = 0;
  const timers: { at: number; fn: () => void; id: number }[] = [];
  let nextId = 0;
  const clock = {
    setTimeout: (fn: () => void, ms: number) => {
      timers.push({ at: now + ms, fn, id: ++nextId });
      return nextId;
    },
    clearTimeout: (id: unknown) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
    now: () => now,
  };
  const advance = (ms: number) => {
    now += ms;
    timers.sort((x, y) => x.at - y.at || x.id - y.id);
    while (timers.length > 0 && timers[0].at <= now) timers.shift()!.fn();
  };
  const net = new MemoryNetwork({ timers: clock, random: seededRandom(5) });
  const a = net.transport("a");
  const b = net.transport("b");
  const { handler, messages } = sink();
  await b.start(handler);
  net.delay(10, 20);
  a.send("b", hb("a", "b", 1));
  a.send("b", hb("a", "b", 2));
  advance(9);
  assert.equal(messages.length, 0);
  advance(100);
  assert.deepEqual(commits(messages), [1, 2]);
  await net.close();
});

Deno.test("memory: invalid fault parameters are RangeErrors", () => {
  const net = new MemoryNetwork();
  assert.throws(() => net.drop(1.5), RangeError);
  assert.throws(() => net.duplicate(-0.1), RangeError);
  assert.throws(() => net.delay(5, 1), RangeError);
  assert.throws(() => net.reorder(Number.NaN), RangeError);
});
