import assert from "node:assert/strict";
import { listenHttp, serveHttp } from "../../src/platform/http.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long until the server closes `conn`, in ms (throws after `ms`). */
async function closedWithin(conn: Deno.Conn, ms: number): Promise<number> {
  const started = Date.now();
  const buf = new Uint8Array(1024);
  const deadline = setTimeout(() => conn.close(), ms);
  try {
    while ((await conn.read(buf)) !== null) { /* a response, then the end */ }
  } catch {
    // reset, or closed by the deadline
  } finally {
    clearTimeout(deadline);
  }
  const elapsed = Date.now() - started;
  try {
    conn.close();
  } catch {
    // closed
  }
  if (elapsed >= ms) throw new Error(`still open after ${ms} ms`);
  return elapsed;
}

Deno.test("http: requests in flight at shutdown still get their responses", async () => {
  const server = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: async (req) => {
      await req.arrayBuffer();
      await sleep(200);
      return new Response("done", { status: 503 });
    },
  });
  const calls = Array.from(
    { length: 4 },
    () =>
      fetch(`http://127.0.0.1:${server.port}/`, { method: "PUT", body: new Uint8Array(1 << 18) })
        .then(async (r) => `${r.status} ${await r.text()}`),
  );
  await sleep(100);
  await server.shutdown(2000);
  assert.deepEqual(await Promise.all(calls), Array(4).fill("503 done"));
});

Deno.test("http: a request head must be complete within headTimeoutMs", async () => {
  const server = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => new Response("ok"),
    headTimeoutMs: 300,
  });
  try {
    const half = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await half.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\nX-A: b"));
    assert.ok((await closedWithin(half, 3000)) >= 250);
    // A complete request is answered, and the idle keep-alive connection closed afterwards.
    const whole = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await whole.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await closedWithin(whole, 3000);
  } finally {
    await server.shutdown();
  }
});

Deno.test("http: at maxConnections the oldest idle connection makes room", async () => {
  const server = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => new Response("ok"),
    maxConnections: 3,
  });
  try {
    const idle = [];
    for (let i = 0; i < 3; i++) {
      idle.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
      await sleep(20);
    }
    const r = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(await r.text(), "ok");
    await closedWithin(idle[0], 2000);
    for (const c of idle.slice(1)) c.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("http: over HTTPS with client certificates too, half a head is closed at the deadline", async () => {
  const fixtures = new URL("../transport/fixtures/", import.meta.url);
  const cert = await Deno.readTextFile(new URL("node.pem", fixtures));
  const key = await Deno.readTextFile(new URL("node.key", fixtures));
  const ca = await Deno.readTextFile(new URL("ca.pem", fixtures));
  const server = await listenHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => new Response("ok"),
    headTimeoutMs: 300,
    tls: { cert, key, clientCa: ca },
  });
  try {
    const conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port: server.port,
      caCerts: [ca],
      cert,
      key,
    });
    await conn.handshake();
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\nX-A: b"));
    assert.ok((await closedWithin(conn, 3000)) >= 250);
  } finally {
    await server.shutdown();
  }
});

Deno.test("http: a client that does not take a streamed response is closed at writeTimeoutMs", async () => {
  const chunk = new Uint8Array(1 << 16);
  const total = 64 << 20;
  const server = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => {
      let sent = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.enqueue(chunk);
            sent += chunk.length;
            if (sent >= total) controller.close();
          },
        }),
      );
    },
    headTimeoutMs: 10_000,
    writeTimeoutMs: 300,
  });
  try {
    const stalled = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    await stalled.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await sleep(1500); // not reading: the response cannot be sent
    // What the socket buffers held arrives, then the end: the response was cut off.
    let received = 0;
    const buf = new Uint8Array(1 << 16);
    const deadline = setTimeout(() => stalled.close(), 10_000);
    try {
      for (let n; (n = await stalled.read(buf)) !== null;) received += n;
    } catch {
      // reset by the server
    } finally {
      clearTimeout(deadline);
    }
    try {
      stalled.close();
    } catch {
      // closed
    }
    assert.ok(received < total, `the whole response arrived (${received} bytes)`);
  } finally {
    await server.shutdown();
  }
});

Deno.test("http: connections that ended are forgotten; sweeps and shutdown after them are harmless", async () => {
  const server = serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    handler: () => new Response("ok"),
    headTimeoutMs: 200,
  });
  try {
    for (let i = 0; i < 20; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      if (i % 2 === 0) {
        await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        await conn.read(new Uint8Array(1024));
      }
      conn.close();
    }
    await sleep(500); // several sweeps past every deadline
    const r = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(await r.text(), "ok");
  } finally {
    await server.shutdown();
  }
});
