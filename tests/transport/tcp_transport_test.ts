import assert from "node:assert/strict";
import * as nodeNet from "node:net";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { EntryType, type InstallSnapshotRequest, type Message } from "../../src/core/types.ts";
import { connect, listen, type NetConn, parseAddress } from "../../src/platform/net.ts";
import { encodeMessage } from "../../src/transport/codec.ts";
import { SnapshotRejectedError, TransportError } from "../../src/transport/errors.ts";
import { encodeFrame, FrameKind, writeFrameHeader } from "../../src/transport/frame.ts";
import { FrameReader } from "../../src/transport/frame_reader.ts";
import {
  clientHandshake,
  ConnectionPurpose,
  HANDSHAKE_MAX_FRAME_BYTES,
  serverHandshake,
} from "../../src/transport/handshake.ts";
import { TcpTransport, type TcpTransportOptions } from "../../src/transport/tcp_transport.ts";
import type { TransportHandler } from "../../src/transport/types.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

function hb(from: string, to: string, commit: number): Message {
  return { type: "heartbeat", term: 1, from, to, commit, context: 0 };
}

function append(from: string, to: string, prevIndex: number, data: Uint8Array[]): Message {
  return {
    type: "append",
    term: 1,
    from,
    to,
    prevIndex,
    prevTerm: 1,
    commit: 0,
    entries: data.map((d, i) => ({
      index: prevIndex + 1 + i,
      term: 1,
      type: EntryType.Normal,
      data: d,
    })),
  };
}

/** A handler that records messages and lets a test wait for a condition. */
class Inbox implements TransportHandler {
  messages: Message[] = [];
  senders = new Set<string>();
  #waiters: { check: () => boolean; resolve: () => void }[] = [];

  onMessage(message: Message, from: string): void {
    this.messages.push(message);
    this.senders.add(from);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }

  onSnapshot(_m: InstallSnapshotRequest, _data: AsyncIterable<Uint8Array>): Promise<void> {
    return Promise.reject(new Error("unexpected snapshot"));
  }

  /** Resolves once `check()` holds; rejects after 20 s so a broken test fails, not hangs. */
  wait(check: () => boolean, what: string): Promise<void> {
    if (check()) return Promise.resolve();
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 20_000);
    this.#waiters.push({
      check,
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
    });
    return promise;
  }

  count(type: Message["type"], from?: string): number {
    return this.messages.filter((m) => m.type === type && (from === undefined || m.from === from))
      .length;
  }
}

async function open(options: Partial<TcpTransportOptions> = {}): Promise<TcpTransport> {
  return await TcpTransport.listen({ address: "127.0.0.1:0", ...options });
}

async function startInbox(t: TcpTransport): Promise<Inbox> {
  const inbox = new Inbox();
  await t.start(inbox);
  return inbox;
}

/** Captures the transport's log records for the duration of `fn`. */
async function withLogs(fn: (records: LogRecord[]) => Promise<void>): Promise<void> {
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
    await fn(records);
  } finally {
    await reset();
  }
}

function logText(r: LogRecord): string {
  return r.message.map((part) => String(part)).join("");
}

async function waitForLog(records: LogRecord[], pattern: RegExp): Promise<string> {
  for (let i = 0; i < 2000; i++) {
    const hit = records.find((r) => pattern.test(logText(r)));
    if (hit !== undefined) return logText(hit);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no log matching ${pattern}; got:\n${records.map(logText).join("\n")}`);
}

async function waitFor(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (ok()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("tcp: many messages arrive in order per peer, both directions", async () => {
  const a = await open();
  const b = await open();
  const inA = await startInbox(a);
  const inB = await startInbox(b);
  const N = 20_000;
  const APPENDS = 2_000;
  const payload = new Uint8Array(100).fill(7);
  for (let i = 0; i < N; i++) {
    a.send(b.localAddress, hb("a", "b", i));
    b.send(a.localAddress, hb("b", "a", i));
    if (i % 10 === 0) a.send(b.localAddress, append("a", "b", i / 10, [payload]));
    // Let the writers run now and then, as a real node would between ticks.
    if (i % 2000 === 1999) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await inB.wait(() => inB.messages.length === N + APPENDS, "a's messages");
  await inA.wait(() => inA.messages.length === N, "b's messages");
  const beats = inB.messages.filter((m) => m.type === "heartbeat").map((m) => m.commit);
  assert.deepEqual(beats, Array.from({ length: N }, (_, i) => i));
  const appends = inB.messages.filter((m) => m.type === "append");
  assert.deepEqual(
    appends.map((m) => m.prevIndex),
    Array.from({ length: APPENDS }, (_, i) => i),
  );
  assert.deepEqual([...appends[5].entries[0].data], [...payload]);
  assert.deepEqual(
    inA.messages.map((m) => (m.type === "heartbeat" ? m.commit : -1)),
    Array.from({ length: N }, (_, i) => i),
  );
  assert.deepEqual([...inB.senders], [a.localAddress], "the sender's advertised address");
  assert.deepEqual([...inA.senders], [b.localAddress]);
  const stats = a.stats().peers[0];
  assert.equal(stats.sent, N + APPENDS);
  assert.equal(stats.dropped, 0);
  assert.deepEqual(stats.connected, { bulk: true, control: true });
  await a.close();
  await b.close();
});

Deno.test("tcp: three transports talk all to all", async () => {
  const ts = [await open(), await open(), await open()];
  const inboxes = await Promise.all(ts.map(startInbox));
  const names = ["n0", "n1", "n2"];
  const M = 1000;
  for (let i = 0; i < M; i++) {
    for (let from = 0; from < 3; from++) {
      for (let to = 0; to < 3; to++) {
        if (from !== to) ts[from].send(ts[to].localAddress, hb(names[from], names[to], i));
      }
    }
  }
  for (let to = 0; to < 3; to++) {
    await inboxes[to].wait(() => inboxes[to].messages.length === 2 * M, `n${to}'s inbox`);
    for (let from = 0; from < 3; from++) {
      if (from === to) continue;
      const seq = inboxes[to].messages.filter((m) => m.from === names[from]).map((m) =>
        m.type === "heartbeat" ? m.commit : -1
      );
      assert.deepEqual(seq, Array.from({ length: M }, (_, i) => i));
    }
  }
  await Promise.all(ts.map((t) => t.close()));
});

Deno.test("tcp: heartbeats are not stuck behind 16 MiB appends", async () => {
  const a = await open();
  const b = await open();
  const inB = await startInbox(b);
  // Establish both connections first so only the payload sizes race.
  a.send(b.localAddress, append("a", "b", 0, []));
  a.send(b.localAddress, hb("a", "b", 0));
  await inB.wait(() => inB.messages.length === 2, "warm-up");
  const big = new Uint8Array(16 * 1024 * 1024).fill(1);
  a.send(b.localAddress, append("a", "b", 1, [big]));
  a.send(b.localAddress, append("a", "b", 2, [big]));
  a.send(b.localAddress, hb("a", "b", 1));
  await inB.wait(() => inB.messages.length === 5, "everything");
  const order = inB.messages.slice(2).map((m) => m.type);
  assert.ok(
    order.indexOf("heartbeat") < order.lastIndexOf("append"),
    `the heartbeat overtakes the queued appends: ${order}`,
  );
  const last = inB.messages.findLast((m) => m.type === "append");
  assert.ok(last?.type === "append" && last.entries[0].data.length === big.length);
  await a.close();
  await b.close();
});

function snapshotMessage(index: number): InstallSnapshotRequest {
  return {
    type: "snapshot",
    term: 3,
    from: "a",
    to: "b",
    meta: {
      index,
      term: 2,
      configurationIndex: 1,
      configuration: {
        servers: [
          { id: "a", address: "127.0.0.1:1", suffrage: "voter" },
          { id: "b", address: "127.0.0.1:2", suffrage: "voter" },
        ],
      },
    },
  };
}

const CHUNK = 64 * 1024;

/** Yields `total` bytes of a deterministic pattern in chunks, reusing one buffer. */
async function* pattern(total: number, chunk = CHUNK): AsyncGenerator<Uint8Array> {
  const buf = new Uint8Array(chunk);
  for (let at = 0; at < total; at += chunk) {
    const n = Math.min(chunk, total - at);
    for (let i = 0; i < n; i++) buf[i] = (at + i) * 31 >>> 3;
    yield buf.subarray(0, n);
  }
}

function checksum(sum: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) sum = (Math.imul(sum, 16777619) ^ bytes[i]) >>> 0;
  return sum;
}

Deno.test("tcp: a 20 MiB snapshot streams in chunks and is acknowledged", async () => {
  const a = await open();
  const b = await open();
  const TOTAL = 20 * 1024 * 1024 + 123;
  let expected = 2166136261;
  for await (const c of pattern(TOTAL)) expected = checksum(expected, c);
  let got = { size: 0, sum: 2166136261, chunks: 0, largest: 0, meta: undefined as unknown };
  let sender = "";
  await b.start({
    onMessage: () => {},
    onSnapshot: async (m, data, from) => {
      sender = from;
      got = { size: 0, sum: 2166136261, chunks: 0, largest: 0, meta: m };
      for await (const chunk of data) {
        got.size += chunk.length;
        got.sum = checksum(got.sum, chunk);
        got.chunks++;
        got.largest = Math.max(got.largest, chunk.length);
      }
    },
  });
  await a.sendSnapshot(b.localAddress, snapshotMessage(500), pattern(TOTAL));
  assert.equal(got.size, TOTAL);
  assert.equal(got.sum, expected);
  assert.deepEqual(got.meta, snapshotMessage(500));
  assert.equal(sender, a.localAddress);
  assert.ok(got.chunks >= TOTAL / CHUNK, `streamed in ${got.chunks} chunks`);
  assert.ok(got.largest <= 1024 * 1024);

  // Source chunks larger than the frame chunk size are split.
  await a.sendSnapshot(b.localAddress, snapshotMessage(501), pattern(3 * 1024 * 1024, 3 << 20));
  assert.equal(got.size, 3 * 1024 * 1024);
  assert.ok(got.chunks >= 3);
  await a.close();
  await b.close();
});

Deno.test("tcp: snapshot outcomes: rejection, early answer, source failure", async () => {
  const a = await open();
  const b = await open();
  let mode = "reject";
  await b.start({
    onMessage: () => {},
    onSnapshot: async (_m, data) => {
      if (mode === "reject") {
        for await (const _ of data) break;
        throw new Error("no space left on device");
      }
      if (mode === "ignore") return; // e.g. a stale snapshot: answered without reading
      for await (const _ of data) { /* consume */ }
    },
  });
  await assert.rejects(
    a.sendSnapshot(b.localAddress, snapshotMessage(1), pattern(8 * 1024 * 1024)),
    (e: unknown) => e instanceof SnapshotRejectedError && /no space left/.test(e.message),
  );
  mode = "ignore";
  await a.sendSnapshot(b.localAddress, snapshotMessage(2), pattern(8 * 1024 * 1024));
  mode = "consume";
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(1000);
    throw new Error("snapshot file vanished");
  }
  await assert.rejects(
    a.sendSnapshot(b.localAddress, snapshotMessage(3), failing()),
    /snapshot file vanished/,
  );
  await a.sendSnapshot(b.localAddress, snapshotMessage(4), pattern(1000));
  await a.close();
  await b.close();
});

Deno.test("tcp: snapshots to unreachable or invalid addresses reject with TransportError", async () => {
  const a = await open();
  const port = freePort();
  await assert.rejects(
    a.sendSnapshot(`127.0.0.1:${port}`, snapshotMessage(1), pattern(10)),
    TransportError,
  );
  await assert.rejects(a.sendSnapshot("no-port", snapshotMessage(1), pattern(10)), TransportError);
  const b = await open(); // not started: answers with an error
  await assert.rejects(
    a.sendSnapshot(b.localAddress, snapshotMessage(1), pattern(10)),
    /not started/,
  );
  await a.close();
  await b.close();
  await assert.rejects(
    a.sendSnapshot(b.localAddress, snapshotMessage(1), pattern(10)),
    /closed/,
  );
});

Deno.test("tcp: reconnects after the peer restarts", async () => {
  const a = await open({ maxBackoffMs: 200 });
  let b = await open();
  const address = b.localAddress;
  let inB = await startInbox(b);
  a.send(address, hb("a", "b", 1));
  await inB.wait(() => inB.messages.length === 1, "first message");
  await b.close();
  b = await TcpTransport.listen({ address });
  inB = await startInbox(b);
  // Messages sent while the old connection dies are dropped; Raft would retry, so do we.
  let i = 2;
  const retry = setInterval(() => a.send(address, hb("a", "b", i++)), 20);
  try {
    await inB.wait(() => inB.messages.length > 0, "a message after the restart");
  } finally {
    clearInterval(retry);
  }
  assert.ok(a.stats().peers[0].dropped >= 0);
  await a.close();
  await b.close();
});

Deno.test("tcp: cluster keys: matching keys talk, wrong or missing keys are rejected", async () => {
  await withLogs(async (logs) => {
    const key1 = new TextEncoder().encode("correct horse battery staple");
    const key2 = new TextEncoder().encode("incorrect horse battery staple");
    const a = await open({ clusterKey: key1 });
    const b = await open({ clusterKey: key2 });
    const c = await open({ clusterKey: key1 });
    const d = await open();
    const inB = await startInbox(b);
    const inC = await startInbox(c);
    const inD = await startInbox(d);

    a.send(c.localAddress, hb("a", "c", 1));
    await inC.wait(() => inC.messages.length === 1, "a → c with the same key");

    a.send(b.localAddress, hb("a", "b", 1));
    await waitForLog(logs, /failed the cluster key check/);
    d.send(b.localAddress, hb("d", "b", 1));
    await waitForLog(logs, /requires a cluster key and the dialer has none/);
    a.send(d.localAddress, hb("a", "d", 1));
    await waitForLog(logs, /has a cluster key but this node has none/);
    assert.equal(inB.messages.length, 0);
    assert.equal(inD.messages.length, 0);

    // The rejected peers keep working with everyone else.
    c.send(a.localAddress, hb("c", "a", 2));
    const inA = await startInbox(a);
    c.send(a.localAddress, hb("c", "a", 3));
    await inA.wait(() => inA.messages.length >= 1, "c → a");
    await Promise.all([a, b, c, d].map((t) => t.close()));
  });
});

async function rawClient(address: string): Promise<Deno.TcpConn> {
  return await Deno.connect(parseAddress(address));
}

/** Reads until the server closes the connection; returns the bytes it sent. */
async function readToEnd(conn: Deno.Conn): Promise<number> {
  const buf = new Uint8Array(4096);
  let total = 0;
  try {
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      total += n;
    }
  } catch {
    // A reset counts as closed.
  }
  conn.close();
  return total;
}

Deno.test("tcp: garbage clients are disconnected and the transport keeps working", async () => {
  await withLogs(async (logs) => {
    const a = await open();
    const b = await open({ handshakeTimeoutMs: 300 });
    const inB = await startInbox(b);

    const junk = new Uint8Array(5000);
    crypto.getRandomValues(junk);
    const c1 = await rawClient(b.localAddress);
    await c1.write(junk);
    const c2 = await rawClient(b.localAddress);
    await c2.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const c3 = await rawClient(b.localAddress);
    const huge = new Uint8Array(5);
    writeFrameHeader(huge, 0, FrameKind.Hello, 0xffffffff);
    await c3.write(huge);
    const c4 = await rawClient(b.localAddress); // says nothing: cut at the handshake deadline
    await Promise.all([c1, c2, c3, c4].map(readToEnd));
    await waitForLog(logs, /rejected a connection from .*frame too large/);

    // A client that passes the handshake and then sends garbage frames.
    const conn = await connect(parseAddress(b.localAddress));
    const reader = new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES);
    await clientHandshake(conn, reader, {
      key: null,
      purpose: ConnectionPurpose.Control,
      localAddress: "evil:1",
      localId: "evil",
    });
    await conn.write(encodeFrame(FrameKind.Message, encodeMessage(hb("evil", "b", 1))));
    await conn.write(encodeFrame(FrameKind.Message, new Uint8Array([0x94, 8, 0xff, 1, 2])));
    assert.equal(await reader.next(), false, "closed by the transport");
    conn.close();
    await waitForLog(logs, /closing the connection from evil at evil:1 .*invalid timeout_now.term/);
    assert.equal(inB.messages.length, 1, "only the valid message reached the handler");

    // A client that speaks for one server and sends a message from another.
    const liar = await connect(parseAddress(b.localAddress));
    const liarReader = new FrameReader(liar, HANDSHAKE_MAX_FRAME_BYTES);
    await clientHandshake(liar, liarReader, {
      key: null,
      purpose: ConnectionPurpose.Control,
      localAddress: "liar:1",
      localId: "liar",
    });
    await liar.write(encodeFrame(FrameKind.Message, encodeMessage(hb("a", "b", 1))));
    assert.equal(await liarReader.next(), false, "closed by the transport");
    liar.close();
    await waitForLog(logs, /a message from a on a connection of liar: expected only liar/);
    assert.equal(inB.messages.length, 1, "the impersonation did not reach the handler");

    for (let i = 0; i < 100; i++) a.send(b.localAddress, hb("a", "b", i));
    await inB.wait(() => inB.count("heartbeat", "a") === 100, "messages after the garbage");
    await a.close();
    await b.close();
  });
});

Deno.test("tcp: oversized frames are dropped by the sender or cut off by the receiver", async () => {
  await withLogs(async (logs) => {
    const small = await open({ maxFrameBytes: 1024 * 1024 });
    const big = await open();
    const inSmall = await startInbox(small);
    const inBig = await startInbox(big);
    const twoMiB = new Uint8Array(2 * 1024 * 1024);

    // The receiver's limit: it closes the connection, logs, and keeps working.
    big.send(small.localAddress, append("big", "small", 0, []));
    await inSmall.wait(() => inSmall.messages.length === 1, "the warm-up append");
    big.send(small.localAddress, append("big", "small", 1, [twoMiB]));
    await waitForLog(logs, /closing the connection from .*frame too large/);
    let prev = 2;
    const retry = setInterval(
      () => big.send(small.localAddress, append("big", "small", prev++, [])),
      20,
    );
    try {
      await inSmall.wait(() => inSmall.messages.length >= 2, "appends after the reconnect");
    } finally {
      clearInterval(retry);
    }
    assert.ok(inSmall.messages.every((m) => m.type === "append" && m.entries.length === 0));

    // The sender's own limit: dropped before it hits the wire.
    small.send(big.localAddress, append("small", "big", 0, [twoMiB]));
    await waitForLog(logs, /dropping a append message .* exceed the frame limit/);
    small.send(big.localAddress, hb("small", "big", 1));
    await inBig.wait(() => inBig.messages.length === 1, "the heartbeat");
    assert.equal(inBig.messages[0].type, "heartbeat");
    assert.equal(small.stats().peers[0].dropped, 1);
    await small.close();
    await big.close();
  });
});

Deno.test("tcp: TLS between transports, with messages and a snapshot", async () => {
  const tls = {
    certFile: new URL("node.pem", FIXTURES).pathname,
    keyFile: new URL("node.key", FIXTURES).pathname,
    caFile: new URL("ca.pem", FIXTURES).pathname,
  };
  const key = crypto.getRandomValues(new Uint8Array(32));
  const a = await open({ tls, clusterKey: key });
  const b = await open({ tls, clusterKey: key });
  let snapshotBytes = 0;
  const inB = new Inbox();
  inB.onSnapshot = async (_m, data) => {
    for await (const chunk of data) snapshotBytes += chunk.length;
  };
  await b.start(inB);
  for (let i = 0; i < 1000; i++) a.send(b.localAddress, hb("a", "b", i));
  a.send(b.localAddress, append("a", "b", 0, [new Uint8Array(100_000)]));
  await inB.wait(() => inB.messages.length === 1001, "messages over TLS");
  await a.sendSnapshot(b.localAddress, snapshotMessage(9), pattern(3 * 1024 * 1024));
  assert.equal(snapshotBytes, 3 * 1024 * 1024);
  await a.close();
  await b.close();
});

Deno.test("tcp: with a CA, TLS is mutual: dialers without a certificate it signed are refused", async () => {
  await withLogs(async (logs) => {
    const fixture = (name: string) => new URL(name, FIXTURES).pathname;
    const tls = {
      certFile: fixture("node.pem"),
      keyFile: fixture("node.key"),
      caFile: fixture("ca.pem"),
    };
    const b = await open({ tls });
    const inB = await startInbox(b);
    // A peer with a certificate from the CA gets in.
    const a = await open({ tls });
    a.send(b.localAddress, hb("a", "b", 1));
    await inB.wait(
      () => inB.count("heartbeat", "a") === 1,
      "a message from a peer with a certificate",
    );
    // One whose certificate the CA did not sign does not.
    const stranger = await open({
      tls: {
        certFile: fixture("other.pem"),
        keyFile: fixture("other.key"),
        caFile: fixture("ca.pem"),
      },
    });
    stranger.send(b.localAddress, hb("stranger", "b", 1));
    // Nor does one presenting no certificate at all.
    const bare = await Deno.connectTls({
      ...parseAddress(b.localAddress),
      caCerts: [await Deno.readTextFile(fixture("ca.pem"))],
    });
    await assert.rejects(async () => {
      await bare.handshake();
      await bare.write(new Uint8Array(1));
      if ((await bare.read(new Uint8Array(8))) === null) throw new Error("closed");
    });
    bare.close();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(inB.count("heartbeat", "stranger"), 0, "nothing from the stranger");
    await stranger.close();
    await a.close();
    await b.close();
    void logs;
  });
});

Deno.test("tcp: close resolves promptly with unreachable peers and transfers in flight", async () => {
  const a = await open();
  const b = await open();
  const stuck = Promise.withResolvers<void>();
  let started = false;
  await b.start({
    onMessage: () => {},
    onSnapshot: async (_m, data) => {
      for await (const _ of data) {
        started = true;
        await stuck.promise; // never reads on: a stalled receiver
      }
    },
  });
  const port = freePort();
  a.send(`127.0.0.1:${port}`, hb("a", "x", 1));
  a.send(b.localAddress, hb("a", "b", 1));
  const transfer = a.sendSnapshot(b.localAddress, snapshotMessage(1), pattern(64 * 1024 * 1024));
  const outcome = transfer.then(() => "resolved", (e) => e);
  while (!started) await new Promise((resolve) => setTimeout(resolve, 5));
  await a.close();
  const e = await outcome;
  assert.ok(e instanceof TransportError, `the transfer fails: ${e}`);
  await b.close();
  stuck.resolve();
  // Sending after close is a silent drop.
  a.send(b.localAddress, hb("a", "b", 2));
  await a.close();
});

Deno.test("tcp: messages before start are dropped, delivered after", async () => {
  const a = await open();
  const b = await open();
  a.send(b.localAddress, hb("a", "b", 1));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const inB = await startInbox(b);
  a.send(b.localAddress, hb("a", "b", 2));
  await inB.wait(() => inB.messages.length >= 1, "a message after start");
  assert.deepEqual(inB.messages.map((m) => m.type === "heartbeat" && m.commit), [2]);
  await a.close();
  await b.close();
});

Deno.test("tcp: options are validated and localAddress is the bound or advertised one", async () => {
  await assert.rejects(TcpTransport.listen({ address: "nope" }), TypeError);
  await assert.rejects(TcpTransport.listen({ address: "127.0.0.1:99999" }), TypeError);
  await assert.rejects(open({ maxFrameBytes: -1 }), RangeError);
  await assert.rejects(open({ clusterKey: new Uint8Array(0) }), RangeError);
  await assert.rejects(open({ advertiseAddress: "x" }), TypeError);
  const a = await open();
  assert.match(a.localAddress, /^127\.0\.0\.1:\d+$/);
  assert.notEqual(parseAddress(a.localAddress).port, 0);
  await assert.rejects(
    TcpTransport.listen({ address: a.localAddress }),
    (e: unknown) =>
      e instanceof TransportError &&
      e.message === `cannot listen on ${a.localAddress}: address already in use`,
  );
  const b = await open({ advertiseAddress: "node-b.internal:7002" });
  assert.equal(b.localAddress, "node-b.internal:7002");
  await a.close();
  await b.close();
  await assert.rejects(a.start(new Inbox()), TransportError);
});

Deno.test("tcp: a peer that stops answering keepalives is reconnected", async () => {
  await withLogs(async (logs) => {
    // A fake peer: completes handshakes, then never sends a ping.
    const listener = await listen({ hostname: "127.0.0.1", port: 0 });
    const conns: NetConn[] = [];
    const served = (async () => {
      for await (const conn of listener) {
        conns.push(conn);
        const reader = new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES);
        await serverHandshake(conn, reader, { key: null }).catch(() => {});
      }
    })();
    const a = await open({ keepaliveIntervalMs: 20, maxBackoffMs: 20 });
    const address = `127.0.0.1:${listener.addr.port}`;
    a.send(address, hb("a", "x", 1));
    await waitForLog(logs, /no keepalive from 127\.0\.0\.1:\d+ for 100 ms/);
    let i = 2;
    const retry = setInterval(() => a.send(address, hb("a", "x", i++)), 10);
    try {
      while (conns.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    } finally {
      clearInterval(retry);
    }
    await a.close();
    listener.close();
    await served;
    for (const conn of conns) conn.close();
  });
});

/** A stranger from another loopback address (a different host to the transport). */
function strangerFrom(host: string, address: string): Promise<nodeNet.Socket> {
  const { hostname, port } = parseAddress(address);
  return new Promise((resolve, reject) => {
    const s = nodeNet.connect({ host: hostname, port, localAddress: host }, () => resolve(s));
    s.on("error", reject);
  });
}

function closedSocket(s: nodeNet.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve();
    s.on("close", () => resolve());
    s.resume();
  });
}

/** A connection past the handshake (as server `id`), whose reads the test controls. */
async function handshaken(address: string, id: string): Promise<NetConn> {
  const conn = await connect(parseAddress(address));
  await clientHandshake(conn, new FrameReader(conn, HANDSHAKE_MAX_FRAME_BYTES), {
    key: null,
    purpose: ConnectionPurpose.Control,
    localAddress: `${id}:1`,
    localId: id,
  });
  return conn;
}

/** Resolves once `conn` is closed by the other end (reading and dropping what comes). */
async function closedByPeer(conn: NetConn): Promise<void> {
  try {
    while ((await conn.read()) !== null) { /* pings */ }
  } catch {
    // reset: closed too
  }
}

Deno.test("tcp: strangers in their handshake are capped apart from peers, per host too", async () => {
  await withLogs(async (logs) => {
    const a = await open();
    const b = await open({
      maxPendingConnections: 4,
      maxPendingPerHost: 2,
      handshakeTimeoutMs: 3000,
    });
    const inB = await startInbox(b);
    // Two silent strangers from 127.0.0.2 hold their host's slots; a third is refused at once.
    const held = [
      await strangerFrom("127.0.0.2", b.localAddress),
      await strangerFrom("127.0.0.2", b.localAddress),
    ];
    await new Promise((r) => setTimeout(r, 50));
    const extra = await strangerFrom("127.0.0.2", b.localAddress);
    const started = performance.now();
    await closedSocket(extra);
    assert.ok(performance.now() - started < 1500, "refused before any handshake deadline");
    await waitForLog(logs, /refused a connection from .*maxPendingPerHost/);
    // Meanwhile a peer from another host gets in.
    const retry = setInterval(() => a.send(b.localAddress, hb("a", "b", 1)), 50);
    try {
      await inB.wait(() => inB.count("heartbeat", "a") >= 1, "a message from a real peer");
    } finally {
      clearInterval(retry);
    }
    assert.equal(b.stats().pendingConnections, 2);
    for (const s of held) s.destroy();
    await a.close();
    await b.close();
  });
});

Deno.test("tcp: a full set of strangers in their handshake makes room for a peer, oldest first", async () => {
  await withLogs(async (logs) => {
    const a = await open();
    const b = await open({ maxPendingConnections: 3, handshakeTimeoutMs: 5000 });
    const inB = await startInbox(b);
    const held = [];
    for (const host of ["127.0.0.2", "127.0.0.3", "127.0.0.4"]) {
      held.push(await strangerFrom(host, b.localAddress));
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(b.stats().pendingConnections, 3);
    a.send(b.localAddress, hb("a", "b", 1));
    await inB.wait(() => inB.count("heartbeat", "a") >= 1, "the peer's message");
    await closedSocket(held[0]);
    await waitForLog(logs, /still in its handshake, the oldest of 3 \(maxPendingConnections\)/);
    assert.ok(!held[2].destroyed, "the newest stranger is still waiting");
    for (const s of held) s.destroy();
    await a.close();
    await b.close();
  });
});

Deno.test("tcp: connections past the handshake beyond maxInboundConnections are refused", async () => {
  await withLogs(async (logs) => {
    const b = await open({ maxInboundConnections: 2 });
    await startInbox(b);
    const held = [await handshaken(b.localAddress, "x"), await handshaken(b.localAddress, "y")];
    const extra = await rawClient(b.localAddress);
    const started = performance.now();
    await readToEnd(extra);
    assert.ok(performance.now() - started < 1500, "refused at once");
    await waitForLog(logs, /refused a connection from .*maxInboundConnections/);
    for (const c of held) c.close();
    await b.close();
  });
});

Deno.test("tcp: silent peers, trickled frames and buffering past the budget end their connections", async () => {
  await withLogs(async (logs) => {
    const b = await open({
      keepaliveIntervalMs: 50,
      frameTimeoutMs: 400,
      maxBufferedBytes: 100_000,
    });
    const inB = await startInbox(b);

    // Handshaken, then deaf: it never answers a ping.
    const silent = await handshaken(b.localAddress, "silent");
    const t0 = performance.now();
    await closedByPeer(silent);
    assert.ok(performance.now() - t0 < 3000);
    await waitForLog(logs, /closing the connection from .*nothing received for 250 ms/);

    // A frame that starts and never ends (while answering pings).
    const trickle = await handshaken(b.localAddress, "trickle");
    const header = new Uint8Array(5);
    writeFrameHeader(header, 0, FrameKind.Message, 1000);
    await trickle.write(header);
    await trickle.write(new Uint8Array(10));
    const pings = setInterval(
      () => trickle.write(encodeFrame(FrameKind.Ping, new Uint8Array())).catch(() => {}),
      40,
    );
    await closedByPeer(trickle);
    clearInterval(pings);
    await waitForLog(logs, /a frame still incomplete after 400 ms/);

    // Two announcing big frames: the second would pass the total budget.
    const first = await handshaken(b.localAddress, "first");
    const second = await handshaken(b.localAddress, "second");
    writeFrameHeader(header, 0, FrameKind.Message, 90_000);
    await first.write(header);
    await first.write(new Uint8Array(60_000));
    await waitFor(() => b.stats().bufferedBytes === 60_000, "the first connection's bytes");
    await second.write(header);
    await second.write(new Uint8Array(60_000));
    await closedByPeer(second);
    await waitForLog(logs, /too much buffered: expected at most 100000 bytes/);
    assert.equal(b.stats().bufferedBytes, 60_000, "the refused bytes were returned");
    first.close();
    await waitFor(() => b.stats().bufferedBytes === 0, "every partial frame freed");

    // The transport still works for a peer.
    const a = await open();
    a.send(b.localAddress, hb("a", "b", 1));
    await inB.wait(() => inB.count("heartbeat", "a") >= 1, "a message after all that");
    await a.close();
    await b.close();
  });
});

Deno.test("tcp: a snapshot larger than maxSnapshotBytes fails", async () => {
  const a = await open();
  const b = await open({ maxSnapshotBytes: 4096 });
  let stored = 0;
  await b.start({
    onMessage: () => {},
    onSnapshot: async (_m, data) => {
      for await (const c of data) stored += c.length;
    },
  });
  await assert.rejects(
    a.sendSnapshot(b.localAddress, snapshotMessage(1), pattern(10_000)),
    (e: unknown) =>
      e instanceof SnapshotRejectedError && /too large: expected at most 4096/.test(e.message),
  );
  assert.ok(stored <= 4096, `stored ${stored}`);
  await a.sendSnapshot(b.localAddress, snapshotMessage(2), pattern(4096));
  await a.close();
  await b.close();
});
