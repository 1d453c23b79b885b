/**
 * End-to-end: a cluster loses two of three servers for good; `raftd recover`
 * on the survivor brings it back with every write it held, and new servers
 * join it.
 */

import { strict as assert } from "node:assert";
import { cli, e2eTest, http, leaderOf, Node, step, waitFor, waitForCluster } from "./helpers.ts";

e2eTest({
  name: "e2e: quorum lost for good → raftd recover on the survivor → serve → join",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-recover-" });
    const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`));
    const fresh = [4, 5].map((i) => new Node(`n${i}`, `${dir}/n${i}`));
    const all = [...nodes, ...fresh];
    const acked = new Map<string, string>();
    let ok = false;
    try {
      let survivor = nodes[0];
      let clusterId = "";
      await step(t, "a three-node cluster with acknowledged writes", async () => {
        nodes[0].start(["--bootstrap"]);
        await waitFor("n1 healthy", () => nodes[0].healthy());
        nodes[1].start(["--join", nodes[0].url]);
        nodes[2].start(["--join", nodes[0].url]);
        await waitForCluster(nodes, ["n1", "n2", "n3"]);
        clusterId = (await nodes[0].status()).clusterId as string;
        for (let i = 0; i < 60; i++) {
          const via = nodes[i % 3];
          const r = await http(`${via.url}/v1/kv/k${i}`, { method: "PUT", body: `v${i}` });
          assert.equal(r.status, 200, r.text);
          acked.set(`k${i}`, `v${i}`);
        }
        // The survivor is a follower holding every acknowledged write.
        const leader = await leaderOf(nodes);
        survivor = nodes.find((n) => n !== leader)!;
        const commit = (await leader.status()).commitIndex as number;
        await waitFor(
          `${survivor.id} applied ${commit}`,
          async () => (await survivor.status()).appliedIndex as number >= commit,
        );
      });

      await step(t, "two servers are lost for good: no quorum", async () => {
        for (const n of nodes.filter((x) => x !== survivor)) {
          await n.stop("SIGKILL");
          await Deno.remove(n.dataDir, { recursive: true });
        }
        await waitFor(
          `${survivor.id} has no leader`,
          async () => (await survivor.status()).leader === null,
        );
      });

      const peersFile = `${dir}/peers.json`;
      await step(t, "recover refuses a running node and bad peers files", async () => {
        await Deno.writeTextFile(
          peersFile,
          JSON.stringify([{
            id: survivor.id,
            raft: survivor.raftAddress,
            http: survivor.url,
            suffrage: "voter",
          }]),
        );
        const busy = await cli(["recover", "--data", survivor.dataDir, "--peers", peersFile]);
        assert.equal(busy.code, 1, busy.stdout);
        assert.match(busy.stderr, /is in use by process \d+.*\(nothing was changed\)/);
        assert.equal((await survivor.stop("SIGTERM"))?.code, 0);

        const bad = `${dir}/bad.json`;
        for (
          const [content, pattern] of [
            ["{", /not valid JSON/],
            ["[]", /non-empty JSON array/],
            [
              JSON.stringify([{ id: "x9", raft: "127.0.0.1:1" }]),
              new RegExp(`does not list this server \\(${survivor.id}\\); it lists x9`),
            ],
            [
              JSON.stringify([{ id: survivor.id, raft: survivor.raftAddress, suffrage: "boss" }]),
              /suffrage must be "voter" or "nonvoter", got "boss"/,
            ],
            [
              JSON.stringify([
                { id: survivor.id, raft: "127.0.0.1:7" },
                { id: "n9", raft: "127.0.0.1:7" },
              ]),
              /gives \S+ and n9 the same raft address 127\.0\.0\.1:7/,
            ],
            [
              JSON.stringify([{
                id: survivor.id,
                raft: survivor.raftAddress,
                suffrage: "nonvoter",
              }]),
              /at least one voter/,
            ],
          ] as const
        ) {
          await Deno.writeTextFile(bad, content);
          const r = await cli(["recover", "--data", survivor.dataDir, "--peers", bad, "--json"]);
          assert.equal(r.code, 1, `${content}: ${r.stdout}`);
          assert.match(JSON.parse(r.stderr).error, pattern);
        }
        const usage = await cli(["recover", "--data", survivor.dataDir]);
        assert.equal(usage.code, 2);
        assert.match(usage.stderr, /--data and --peers are required/);
      });

      await step(
        t,
        "raftd recover, then serve: it leads with every acknowledged write",
        async () => {
          const r = await cli(["recover", "--data", survivor.dataDir, "--peers", peersFile]);
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, /held entries up to index \d+/);
          assert.match(r.stdout, new RegExp(`${survivor.id}\\s+voter`));
          survivor.start();
          await waitFor(
            `${survivor.id} leads`,
            async () => (await survivor.status()).state === "leader",
          );
          const st = await survivor.status();
          assert.equal(st.clusterId, clusterId, "the same cluster");
          assert.deepEqual((st.configuration as { id: string }[]).map((s) => s.id), [survivor.id]);
          for (const [key, value] of acked) {
            const got = await http(`${survivor.url}/v1/kv/${key}`);
            assert.equal(got.status, 200, `${key}: ${got.text}`);
            assert.equal(got.text, value);
          }
          const put = await http(`${survivor.url}/v1/kv/after`, {
            method: "PUT",
            body: "recovered",
          });
          assert.equal(put.status, 200, put.text);
          acked.set("after", "recovered");
        },
      );

      await step(t, "new servers join the recovered cluster", async () => {
        for (const n of fresh) n.start(["--join", survivor.url]);
        await waitForCluster([survivor, ...fresh], [survivor.id, "n4", "n5"]);
        const commit = (await survivor.status()).commitIndex as number;
        for (const n of fresh) {
          await waitFor(
            `${n.id} caught up`,
            async () => (await n.status()).appliedIndex as number >= commit,
          );
          assert.equal((await n.status()).clusterId, clusterId);
          for (const [key, value] of acked) {
            const got = await http(`${n.url}/v1/kv/${key}?consistency=stale`);
            assert.equal(got.text, value, `${n.id} ${key}`);
          }
        }
      });
      ok = true;
    } finally {
      if (!ok) { for (const n of all) console.error(`--- ${n.id} logs ---\n${n.logs()}`); }
      await Promise.all(all.map((n) => n.stop("SIGKILL")));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
