/**
 * Exercises the TCP transport on whatever runtime runs it (the node:net /
 * node:tls platform code under Bun): TLS + cluster key, ordered messages, a
 * streamed snapshot, a rejected snapshot, a wrong key, a garbage client.
 * Prints `ok runtime=... messages=N snapshot=BYTES` on success.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Message } from "../../src/core/types.ts";
import { connect, parseAddress } from "../../src/platform/net.ts";
import { runtimeName } from "../../src/platform/runtime.ts";
import {
  ProtocolError,
  SnapshotRejectedError,
  TcpTransport,
  TransportError,
} from "../../src/transport/mod.ts";

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const tls = {
  certFile: fixture("node.pem"),
  keyFile: fixture("node.key"),
  caFile: fixture("ca.pem"),
};
const key = new TextEncoder().encode("bun smoke cluster key");

const a = await TcpTransport.listen({ address: "127.0.0.1:0", tls, clusterKey: key });
const b = await TcpTransport.listen({ address: "127.0.0.1:0", tls, clusterKey: key });
const stranger = await TcpTransport.listen({
  address: "127.0.0.1:0",
  tls,
  clusterKey: new TextEncoder().encode("another key"),
});

const N = 10_000;
const got: number[] = [];
let done = Promise.withResolvers<void>();
let snapshotBytes = 0;
await b.start({
  onMessage(m: Message, from: string) {
    assert.equal(from, a.localAddress);
    got.push(m.type === "heartbeat" ? m.commit : -1);
    if (got.length === N) done.resolve();
  },
  async onSnapshot(m, data) {
    if (m.meta.index === 2) throw new Error("refused on purpose");
    for await (const chunk of data) snapshotBytes += chunk.length;
  },
});

for (let i = 0; i < N; i++) {
  a.send(b.localAddress, { type: "heartbeat", term: 1, from: "a", to: "b", commit: i, context: 0 });
  if (i % 1000 === 999) await new Promise((resolve) => setTimeout(resolve, 0));
}
await done.promise;
assert.deepEqual(got, Array.from({ length: N }, (_, i) => i));

const meta = (index: number) => ({
  type: "snapshot" as const,
  term: 1,
  from: "a",
  to: "b",
  meta: { index, term: 1, configurationIndex: 0, configuration: { servers: [] } },
});
async function* data(total: number) {
  const chunk = new Uint8Array(256 * 1024).fill(3);
  for (let sent = 0; sent < total; sent += chunk.length) yield chunk;
}
await a.sendSnapshot(b.localAddress, meta(1), data(5 * 1024 * 1024));
assert.equal(snapshotBytes, 5 * 1024 * 1024);
await assert.rejects(a.sendSnapshot(b.localAddress, meta(2), data(1024)), SnapshotRejectedError);
await assert.rejects(
  stranger.sendSnapshot(b.localAddress, meta(3), data(1024)),
  (e: unknown) => e instanceof TransportError && e.cause instanceof ProtocolError,
);

// A client speaking garbage is cut off; the transport keeps working.
const raw = await connect({ ...parseAddress(b.localAddress) });
await raw.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
while ((await raw.read()) !== null) { /* until the server hangs up */ }
raw.close();
got.length = 0;
done = Promise.withResolvers<void>();
for (let i = 0; i < N; i++) {
  a.send(b.localAddress, { type: "heartbeat", term: 1, from: "a", to: "b", commit: i, context: 0 });
}
await done.promise;

// Binding a taken address fails the same way on every runtime.
await assert.rejects(
  TcpTransport.listen({ address: b.localAddress }),
  (e: unknown) =>
    e instanceof TransportError &&
    e.message === `cannot listen on ${b.localAddress}: address already in use`,
);

await Promise.all([a.close(), b.close(), stranger.close()]);
console.log(`ok runtime=${runtimeName} messages=${N} snapshot=${snapshotBytes}`);
