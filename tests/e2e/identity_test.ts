/**
 * End-to-end: the data directory lock, the recorded server id, and cluster
 * ids keeping two clusters apart, on real raftd processes.
 */

import { strict as assert } from "node:assert";
import {
  cli,
  e2eTest,
  FAST_FLAGS,
  freePort,
  http,
  leaderOf,
  Node,
  sleep,
  step,
  waitFor,
  waitForCluster,
} from "./helpers.ts";

const CLUSTER_ID = /^[0-9a-f]{32}$/;

/** `raftd serve` on `dir` with fresh ports, expected to end on its own. */
function serveOnce(id: string, dir: string, extra: string[] = []) {
  return cli([
    "serve",
    "--id",
    id,
    "--data",
    dir,
    "--raft",
    `127.0.0.1:${freePort()}`,
    "--http",
    `127.0.0.1:${freePort()}`,
    ...FAST_FLAGS,
    ...extra,
  ], { timeoutMs: 30_000 });
}

e2eTest({
  name: "e2e: one process per data directory; the lock does not outlive a kill -9",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-lock-" });
    const n1 = new Node("n1", `${dir}/n1`);
    let ok = false;
    try {
      n1.start(["--bootstrap"]);
      await waitFor("n1 healthy", () => n1.healthy());
      assert.equal((await http(`${n1.url}/v1/kv/a`, { method: "PUT", body: "1" })).status, 200);

      // A second process waiting for the lock would be killed at serveOnce's
      // deadline (exit code 137, not 1, and no "in use" message).
      const second = await serveOnce("n1", n1.dataDir, ["--bootstrap"]);
      assert.equal(second.code, 1, second.stderr);
      assert.match(
        second.stderr,
        new RegExp(`data directory \\S+ is in use by process ${n1.child!.pid}\\b`),
      );
      // The first one did not notice.
      assert.equal((await http(`${n1.url}/v1/kv/a`)).text, "1");

      // kill -9 leaves no stale lock: the same directory starts again at once.
      await n1.stop("SIGKILL");
      n1.start();
      await waitFor("n1 healthy again", () => n1.healthy());
      assert.equal((await http(`${n1.url}/v1/kv/a`)).text, "1");

      // The directory belongs to n1: another --id is refused and changes nothing.
      assert.equal((await n1.stop("SIGTERM"))?.code, 0);
      const other = await serveOnce("n9", n1.dataDir);
      assert.equal(other.code, 1, other.stderr);
      assert.match(other.stderr, /belongs to server "n1", not "n9"; start it with --id n1/);
      n1.start();
      await waitFor("n1 healthy after the refused start", () => n1.healthy());
      assert.equal((await http(`${n1.url}/v1/kv/a`)).text, "1");
      ok = true;
    } finally {
      if (!ok) console.error(`--- n1 logs ---\n${n1.logs()}`);
      await n1.stop("SIGKILL");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

e2eTest({
  name: "e2e: cluster ids: adopted by joining nodes, and another cluster's node stays untouched",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-cluster-id-" });
    const a = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`));
    const b1 = new Node("b1", `${dir}/b1`);
    const all = [...a, b1];
    let ok = false;
    try {
      let idA = "";
      await step(t, "a bootstrapped cluster has an id; --join and peers add adopt it", async () => {
        a[0].start(["--bootstrap"]);
        await waitFor("n1 healthy", () => a[0].healthy());
        const s = await a[0].status();
        idA = s.clusterId as string;
        assert.match(idA, CLUSTER_ID);
        assert.equal(typeof s.version, "string");
        a[1].start(["--join", a[0].url]);
        // n3 starts with neither --bootstrap nor --join: added from the leader's side.
        a[2].start();
        await waitFor("n3 serving", async () => (await a[2].status()).state !== undefined);
        assert.equal((await a[2].status()).clusterId, null);
        const add = await cli([
          "peers",
          "add",
          "--id",
          "n3",
          "--raft",
          a[2].raftAddress,
          "--http",
          a[2].url,
          "--server",
          a[0].url,
        ]);
        assert.equal(add.code, 0, add.stderr);
        await waitForCluster(a, ["n1", "n2", "n3"]);
        for (const n of a) assert.equal((await n.status()).clusterId, idA, n.id);
        const st = await cli(["status", "--json", "--server", a[2].url]);
        assert.equal(JSON.parse(st.stdout).clusterId, idA);
      });

      await step(t, "cluster A cannot take over a node of cluster B", async () => {
        b1.start(["--bootstrap"]);
        await waitFor("b1 healthy", () => b1.healthy());
        assert.equal(
          (await http(`${b1.url}/v1/kv/only-in-b`, { method: "PUT", body: "b" })).status,
          200,
        );
        const before = await b1.status();
        const idB = before.clusterId as string;
        assert.match(idB, CLUSTER_ID);
        assert.notEqual(idB, idA);

        const add = await cli([
          "peers",
          "add",
          "b1",
          "--raft",
          b1.raftAddress,
          "--server",
          a[0].url,
        ]);
        // The change itself commits on A (b1 would be staging); b1 refuses every connection.
        assert.equal(add.code, 0, add.stderr);
        await sleep(1500);
        const after = await b1.status();
        assert.equal(after.clusterId, idB);
        assert.equal(after.state, "leader");
        assert.deepEqual(
          (after.configuration as { id: string }[]).map((s) => s.id),
          ["b1"],
        );
        assert.equal((await http(`${b1.url}/v1/kv/only-in-b`)).text, "b");
        assert.equal((await http(`${b1.url}/v1/kv/k`)).status, 404);
        const leaderA = await leaderOf(a);
        const confA = (await leaderA.status()).configuration as { id: string; suffrage: string }[];
        assert.equal(confA.find((s) => s.id === "b1")?.suffrage, "staging", "never promoted");
        assert.match(b1.logs() + leaderA.logs(), /cluster id mismatch/);
        const rm = await cli(["peers", "remove", "b1", "--server", a[0].url]);
        assert.equal(rm.code, 0, rm.stderr);
        await waitForCluster(a, ["n1", "n2", "n3"]);
      });

      await step(
        t,
        "a directory of cluster B asked to --join cluster A exits 1, says why",
        async () => {
          // A directory that belongs to B but holds no Raft state yet (say, a node
          // B was adding when it was stopped): its --join is checked first.
          const moved = `${dir}/b1-moved`;
          await Deno.mkdir(moved);
          await Deno.copyFile(`${b1.dataDir}/identity.json`, `${moved}/identity.json`);
          const r = await serveOnce("b1", moved, ["--join", a[0].url]);
          assert.equal(r.code, 1, r.stderr);
          assert.match(
            r.stderr,
            /this node belongs to cluster [0-9a-f]{32}, the cluster at \S+ is [0-9a-f]{32}/,
          );
          const confA = (await (await leaderOf(a)).status()).configuration as { id: string }[];
          assert.ok(!confA.some((s) => s.id === "b1"));
          // A member of B restarted with a stray --join keeps to B.
          await b1.stop("SIGTERM");
          b1.start(["--join", a[0].url]);
          await waitFor("b1 healthy again", () => b1.healthy());
          assert.equal((await http(`${b1.url}/v1/kv/only-in-b`)).text, "b");
        },
      );
      ok = true;
    } finally {
      if (!ok) { for (const n of all) console.error(`--- ${n.id} logs ---\n${n.logs()}`); }
      await Promise.all(all.map((n) => n.stop("SIGKILL")));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
