/**
 * Security, connection exhaustion on the HTTP API: half a request head or a
 * silent connection is closed after the head deadline, and a flood of them
 * at the open-file limit does not end the process. Real raftd processes
 * (source, and the binary when RAFTD_BIN is set; Bun's own idle timer closes
 * such connections after 10 to 15 s, whatever the deadline asked for).
 */

import { strict as assert } from "node:assert";
import { e2eTest, http, Node, sleep, waitFor } from "../e2e/helpers.ts";
import { alive } from "./_cluster.ts";
import { step } from "./_stranger.ts";

/** Resolves with how long `conn` stayed open, in ms, or rejects after `ms`. */
async function closedAfter(conn: Deno.Conn, ms: number): Promise<number> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const read = (async () => {
    const buf = new Uint8Array(1024);
    try {
      while ((await conn.read(buf)) !== null) { /* an error response, then the close */ }
    } catch {
      // reset: closed too
    }
  })();
  const deadline = new Promise<never>((_, reject) =>
    timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms)
  );
  try {
    await Promise.race([read, deadline]);
  } finally {
    clearTimeout(timer);
    conn.close();
  }
  return Date.now() - started;
}

const HALF_HEAD = new TextEncoder().encode("GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: b");

e2eTest({
  name: "security: the HTTP API closes connections that never complete a request head",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-http-" });
    const node = new Node("n1", `${dir}/n1`, ["--http-head-timeout", "1000"]);
    let ok = false;
    try {
      node.start(["--bootstrap"]);
      await waitFor("n1 healthy", () => node.healthy());
      const address = { hostname: "127.0.0.1", port: node.httpPort };

      await step(t, "half a header line", async () => {
        const conn = await Deno.connect(address);
        await conn.write(HALF_HEAD);
        await closedAfter(conn, 20_000);
      });

      await step(t, "a connection that says nothing", async () => {
        await closedAfter(await Deno.connect(address), 20_000);
      });

      await step(t, "a keep-alive connection idle after its request", async () => {
        const conn = await Deno.connect(address);
        await conn.write(new TextEncoder().encode("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
        await closedAfter(conn, 20_000);
      });
      assert.ok(await alive(node));
      ok = true;
    } finally {
      await node.stop();
      if (!ok) console.error(node.logs());
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

e2eTest({
  name: "security: a flood of HTTP connections at the open-file limit does not end the node",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-fds-" });
    const node = new Node("n1", `${dir}/n1`, ["--http-head-timeout", "2000"]);
    // 256 open files for the whole node, far fewer than the connections below.
    node.wrapper = ["sh", "-c", 'ulimit -n 256 && exec "$@"', "sh"];
    const flood: Deno.Conn[] = [];
    let ok = false;
    try {
      node.start(["--bootstrap"]);
      await waitFor("n1 healthy", () => node.healthy());
      for (let i = 0; i < 400; i++) {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: node.httpPort });
          flood.push(conn);
          await conn.write(HALF_HEAD).catch(() => {});
        } catch {
          // refused while the node is out of descriptors: fine
        }
      }
      await sleep(3000);
      assert.ok(await alive(node), `the node exited under the flood:\n${node.logs()}`);
      for (const c of flood.splice(0)) c.close();
      await waitFor("n1 healthy after the flood", () => node.healthy(), 30_000);
      const r = await http(`${node.url}/v1/kv/after-flood`, { method: "PUT", body: "1" });
      assert.equal(r.status, 200, r.text);
      ok = true;
    } finally {
      for (const c of flood) c.close();
      await node.stop();
      if (!ok) console.error(node.logs());
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
