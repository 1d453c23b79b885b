/**
 * Throughput of the TCP transport between two instances in one process, on
 * loopback. Prints one JSON line. Runs on Deno and Bun:
 *
 * ```sh
 * deno run -A bench/transport_bench.ts
 * bun bench/transport_bench.ts
 * ```
 *
 * Senders keep a bounded window of messages in flight (as Raft's pipelining
 * does) instead of queueing everything at once, which the transport would
 * rightly drop beyond its queue limit.
 *
 * @module
 */

import { EntryType, type Message } from "../src/core/types.ts";
import { runtimeName } from "../src/platform/runtime.ts";
import { TcpTransport } from "../src/transport/mod.ts";
import { benchArgs } from "./_args.ts";

benchArgs(
  "deno run -A bench/transport_bench.ts",
  "Throughput of the TCP transport between two instances in one process, on loopback.",
  {},
);

const a = await TcpTransport.listen({ address: "127.0.0.1:0" });
const b = await TcpTransport.listen({ address: "127.0.0.1:0" });

let received = 0;
let receivedBytes = 0;
let wake: (() => void) | null = null;
await b.start({
  onMessage(m: Message) {
    received++;
    if (m.type === "append") { for (const e of m.entries) receivedBytes += e.data.length; }
    if (wake !== null) {
      const w = wake;
      wake = null;
      w();
    }
  },
  onSnapshot: async () => {},
});

/** Sends `count` messages made by `make`, keeping at most `window` unreceived; returns seconds. */
async function run(count: number, window: number, make: (i: number) => Message): Promise<number> {
  received = 0;
  receivedBytes = 0;
  const start = performance.now();
  let sent = 0;
  while (received < count) {
    while (sent < count && sent - received < window) a.send(b.localAddress, make(sent++));
    await new Promise<void>((resolve) => (wake = resolve));
  }
  return (performance.now() - start) / 1000;
}

function heartbeat(i: number): Message {
  return { type: "heartbeat", term: 1, from: "a", to: "b", commit: i, context: 0 };
}

function appender(entrySize: number, perMessage: number): (i: number) => Message {
  const data = new Uint8Array(entrySize).fill(42);
  return (i) => ({
    type: "append",
    term: 1,
    from: "a",
    to: "b",
    prevIndex: i * perMessage,
    prevTerm: 1,
    commit: 0,
    entries: Array.from({ length: perMessage }, (_, j) => ({
      index: i * perMessage + j + 1,
      term: 1,
      type: EntryType.Normal,
      data,
    })),
  });
}

await run(20_000, 2_000, heartbeat); // warm-up

const SMALL = 500_000;
const smallSeconds = await run(SMALL, 5_000, heartbeat);

const APPENDS_1K = 20_000;
const oneKSeconds = await run(APPENDS_1K, 256, appender(1024, 16));
const oneKBytes = receivedBytes;

const APPENDS_1M = 200;
const oneMSeconds = await run(APPENDS_1M, 8, appender(1024 * 1024, 1));
const oneMBytes = receivedBytes;

const snapshotBytes = 256 * 1024 * 1024;
async function* snapshotData(): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(256 * 1024).fill(7);
  for (let sent = 0; sent < snapshotBytes; sent += chunk.length) yield chunk;
}
await b.start({
  onMessage: () => {},
  onSnapshot: async (_m, data) => {
    for await (const _ of data) { /* discard */ }
  },
});
const snapshotStart = performance.now();
await a.sendSnapshot(b.localAddress, {
  type: "snapshot",
  term: 1,
  from: "a",
  to: "b",
  meta: { index: 1, term: 1, configurationIndex: 0, configuration: { servers: [] } },
}, snapshotData());
const snapshotSeconds = (performance.now() - snapshotStart) / 1000;

await a.close();
await b.close();

const MB = 1024 * 1024;
console.log(JSON.stringify({
  bench: "transport",
  runtime: runtimeName,
  small_messages_per_sec: Math.round(SMALL / smallSeconds),
  append_1KiB_x16_messages_per_sec: Math.round(APPENDS_1K / oneKSeconds),
  append_1KiB_x16_MB_per_sec: Math.round(oneKBytes / MB / oneKSeconds),
  append_1MiB_MB_per_sec: Math.round(oneMBytes / MB / oneMSeconds),
  snapshot_MB_per_sec: Math.round(snapshotBytes / MB / snapshotSeconds),
}));
