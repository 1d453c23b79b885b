/**
 * Security, secure by default: a node reachable from other hosts (bound to
 * a non-loopback address) needs a cluster key and an API token, or
 * --insecure; a bootstrap makes them and prints a join token, and three
 * commands make a secure three-host cluster. Real raftd processes (source,
 * and the binary when RAFTD_BIN is set); "other hosts" are simulated by
 * binding 0.0.0.0 and advertising loopback.
 */

import { strict as assert } from "node:assert";
import {
  cli,
  e2eTest,
  FAST_FLAGS,
  freePort,
  http,
  Node,
  sleep,
  waitFor,
  waitForCluster,
} from "../e2e/helpers.ts";
import { step, Stranger } from "./_stranger.ts";

/** `raftd serve` bound to all interfaces, expected to end on its own. */
function serveExposed(dir: string, extra: string[]) {
  const raft = freePort();
  const port = freePort();
  return cli([
    "serve",
    "--id",
    "n1",
    "--data",
    dir,
    "--raft",
    `0.0.0.0:${raft}`,
    "--advertise-raft",
    `127.0.0.1:${raft}`,
    "--http",
    `0.0.0.0:${port}`,
    "--advertise-http",
    `http://127.0.0.1:${port}`,
    ...FAST_FLAGS,
    ...extra,
  ], { timeoutMs: 30_000 });
}

e2eTest({
  name:
    "security: a node reachable from other hosts without a cluster key and API token refuses to start",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-exposed-" });
    try {
      await step(t, "without secrets or --insecure", async () => {
        const r = await serveExposed(`${dir}/a`, []);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /0\.0\.0\.0 and 0\.0\.0\.0 are reachable from other hosts/);
        assert.match(r.stderr, /has no cluster key \(--cluster-key-file\) and no API token/);
        assert.match(r.stderr, /--insecure runs without them/);
      });
      await step(t, "with a key but no token", async () => {
        await Deno.writeTextFile(`${dir}/key`, "k".repeat(32), { mode: 0o600 });
        const r = await serveExposed(`${dir}/b`, ["--cluster-key-file", `${dir}/key`]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /has no API token \(--api-token-file\)/);
      });
      await step(t, "--insecure starts it (with a warning)", async () => {
        const node = new Node("n1", `${dir}/c`, ["--insecure"]);
        node.bindAll = true;
        try {
          node.start(["--bootstrap"]);
          await waitFor("the insecure node healthy", () => node.healthy());
          assert.match(
            node.logs(),
            /--insecure: .* reachable from other hosts without a cluster key/,
          );
        } finally {
          await node.stop();
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

e2eTest({
  name:
    "security: three commands make a secure three-host cluster (bootstrap, then two joins with the token)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-3cmd-" });
    const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`));
    for (const n of nodes) n.bindAll = true;
    let ok = false;
    try {
      let joinToken = "";
      let token = "";
      await step(t, "the bootstrap makes the secrets and prints the join token", async () => {
        nodes[0].start(["--bootstrap"]);
        await waitFor(
          "the join token printed",
          () => /--join-token raftd-join-1\./.test(nodes[0].logs()),
        );
        joinToken = /--join-token (raftd-join-1\.[A-Za-z0-9_-]+)/.exec(nodes[0].logs())![1];
        for (const f of ["cluster.key", "api.token"]) {
          const info = await Deno.stat(`${nodes[0].dataDir}/${f}`);
          assert.equal(info.mode! & 0o777, 0o600, f);
        }
        token = (await Deno.readTextFile(`${nodes[0].dataDir}/api.token`)).trim();
        for (const n of nodes) n.token = token;
        await waitFor("n1 healthy", () => nodes[0].healthy());
        const again = await cli(["join-token", "--data", nodes[0].dataDir]);
        assert.equal(again.stdout.trim(), joinToken, again.stderr);
      });

      await step(t, "two servers join with it", async () => {
        for (const n of nodes.slice(1)) {
          n.start(["--join", nodes[0].url, "--join-token", joinToken]);
        }
        await waitForCluster(nodes, ["n1", "n2", "n3"]);
        for (const n of nodes.slice(1)) {
          assert.equal((await Deno.readTextFile(`${n.dataDir}/api.token`)).trim(), token);
          assert.equal(
            (await Deno.readTextFile(`${n.dataDir}/cluster.key`)).trim(),
            (await Deno.readTextFile(`${nodes[0].dataDir}/cluster.key`)).trim(),
          );
        }
      });

      await step(t, "the API wants the token; the Raft ports want the key", async () => {
        const bare = await http(`${nodes[1].url}/v1/kv/x`, { method: "PUT", body: "1" });
        assert.equal(bare.status, 401, bare.text);
        const authed = await http(`${nodes[1].url}/v1/kv/x`, {
          method: "PUT",
          body: "1",
          headers: { authorization: `Bearer ${token}` },
        });
        assert.equal(authed.status, 200, authed.text);
        await assert.rejects(Stranger.connect(nodes[2].raftAddress), /cluster key/);
      });

      await step(t, "a wrong join token is refused, saying so", async () => {
        const r = await cli([
          "serve",
          "--id",
          "n9",
          "--data",
          `${dir}/n9`,
          "--raft",
          `0.0.0.0:${freePort()}`,
          "--advertise-raft",
          "127.0.0.1:1",
          "--http",
          `0.0.0.0:${freePort()}`,
          "--advertise-http",
          "http://127.0.0.1:1",
          "--join",
          nodes[0].url,
          "--join-token",
          `raftd-join-1.${"A".repeat(43)}`,
          ...FAST_FLAGS,
        ], { timeoutMs: 30_000 });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /refused the join token: 403 the join token is not this cluster's/);
      });

      await step(t, "a joined server restarts without the token", async () => {
        await nodes[2].stop();
        nodes[2].start();
        await sleep(200);
        await waitForCluster(nodes, ["n1", "n2", "n3"]);
      });
      ok = true;
    } finally {
      for (const n of nodes) await n.stop();
      if (!ok) { for (const n of nodes) console.error(n.logs()); }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
