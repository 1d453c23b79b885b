/**
 * Security, TLS on the Raft port: it is mutual. A dialer must present a
 * certificate signed by --tls-ca, so TLS alone (without a cluster key)
 * already keeps strangers out; --tls-cert without --tls-ca is refused.
 * Real raftd processes (source, and the binary when RAFTD_BIN is set).
 */

import { strict as assert } from "node:assert";
import { cli, e2eTest, FAST_FLAGS, freePort, type Node } from "../e2e/helpers.ts";
import { allAlive, startThree, writesCommit } from "./_cluster.ts";
import { step } from "./_stranger.ts";

const FIXTURES = new URL("../transport/fixtures/", import.meta.url);

/** Copies a fixture into `dir` (a key privately: git stores it 0644). */
async function fixture(dir: string, name: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, await Deno.readTextFile(new URL(name, FIXTURES)), { mode: 0o600 });
  return path;
}

/** Whether a TLS client presenting `cert` (or none) can exchange a byte with the Raft port. */
async function tlsAdmits(
  address: { hostname: string; port: number },
  ca: string,
  cert?: { cert: string; key: string },
): Promise<boolean> {
  let conn: Deno.TlsConn | undefined;
  try {
    conn = await Deno.connectTls({ ...address, caCerts: [ca], ...cert });
    await conn.handshake();
    // A hello the node answers (with a refusal, the id is empty): any answer
    // at all means the TLS handshake let us in.
    const hello = new Uint8Array(5 + 5 + 3 + 32 + 2);
    new DataView(hello.buffer).setUint32(0, hello.length - 5);
    hello[4] = 1; // FrameKind.Hello
    hello.set(new TextEncoder().encode("RAFTD"), 5);
    hello[10] = 2; // protocol version
    hello[11] = 2; // purpose: control
    await conn.write(hello);
    const n = await conn.read(new Uint8Array(64));
    return n !== null && n > 0;
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // closed
    }
  }
}

e2eTest({
  name: "security: TLS on the Raft port is mutual, so strangers cannot connect even without a key",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-tls-" });
    let nodes: Node[] = [];
    let ok = false;
    try {
      const flags = [
        "--tls-cert",
        await fixture(dir, "node.pem"),
        "--tls-key",
        await fixture(dir, "node.key"),
        "--tls-ca",
        await fixture(dir, "ca.pem"),
      ];
      await step(t, "--tls-cert without --tls-ca is refused", async () => {
        const r = await cli([
          "serve",
          "--id",
          "n1",
          "--data",
          `${dir}/refused`,
          "--raft",
          `127.0.0.1:${freePort()}`,
          "--http",
          `127.0.0.1:${freePort()}`,
          ...FAST_FLAGS,
          ...flags.slice(0, 4),
        ], { timeoutMs: 30_000 });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /--tls-cert needs --tls-ca/);
      });

      nodes = await startThree(dir, flags);
      const ca = await Deno.readTextFile(new URL("ca.pem", FIXTURES));
      const target = { hostname: "127.0.0.1", port: nodes[0].raftPort };

      await step(t, "a dialer without a certificate is refused at the TLS handshake", async () => {
        assert.equal(await tlsAdmits(target, ca), false);
      });
      await step(t, "so is one whose certificate the CA did not sign", async () => {
        const stranger = {
          cert: await Deno.readTextFile(new URL("other.pem", FIXTURES)),
          key: await Deno.readTextFile(new URL("other.key", FIXTURES)),
        };
        assert.equal(await tlsAdmits(target, ca, stranger), false);
      });
      await step(t, "a peer with a certificate the CA signed gets in", async () => {
        const peer = {
          cert: await Deno.readTextFile(new URL("node.pem", FIXTURES)),
          key: await Deno.readTextFile(new URL("node.key", FIXTURES)),
        };
        assert.equal(await tlsAdmits(target, ca, peer), true);
        await allAlive(nodes);
        await writesCommit(nodes, "over-mutual-tls");
      });
      ok = true;
    } finally {
      for (const n of nodes) await n.stop();
      if (!ok) { for (const n of nodes) console.error(n.logs()); }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
