/**
 * End-to-end: real raftd processes on loopback. One cluster goes through
 * writes and reads on every node, garbage on its ports, a kill -9 of the
 * leader, a fourth node added after a snapshot (InstallSnapshot) and
 * removed, and a full stop/start.
 */

import { strict as assert } from "node:assert";
import { cli, e2eTest, http, leaderOf, Node, sleep, waitFor, waitForCluster } from "./helpers.ts";

e2eTest({
  name: "e2e: a three-node raftd cluster survives what operators do to it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-" });
    // Small snapshot settings so compaction really drops the log.
    const extra = ["--trailing-logs", "0", "--snapshot-threshold", "100000"];
    const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`, extra));
    const all: Node[] = [...nodes];
    const acknowledged = new Map<string, string>();
    let ok = false;
    try {
      await t.step("n1 bootstraps, n2 and n3 join", async () => {
        nodes[0].start(["--bootstrap"]);
        await waitFor("n1 healthy", () => nodes[0].healthy());
        nodes[1].start(["--join", nodes[0].url]);
        nodes[2].start(["--join", nodes[0].url]);
        await waitForCluster(nodes, ["n1", "n2", "n3"]);
      });

      await t.step(
        "writes through the leader and followers; linearizable reads everywhere",
        async () => {
          const leader = await leaderOf(nodes);
          for (const [i, n] of nodes.entries()) {
            const key = `k${i}`;
            const r = await http(`${n.url}/v1/kv/${key}`, {
              method: "PUT",
              body: `v${i} via ${n.id}`,
            });
            assert.equal(r.status, 200, `${n.id} (leader ${leader.id}): ${r.text}`);
            acknowledged.set(key, `v${i} via ${n.id}`);
          }
          for (const n of nodes) {
            for (const [key, value] of acknowledged) {
              const r = await http(`${n.url}/v1/kv/${key}`);
              assert.equal(r.status, 200, `${n.id} ${key}: ${r.text}`);
              assert.equal(r.text, value);
              assert.ok(Number(r.headers.get("x-raft-index")) > 0);
            }
          }
          // The CLI too, against a follower.
          const follower = nodes.find((n) => n !== leader)!;
          const put = await cli(["kv", "put", "cli-key", "--server", follower.url], {
            stdin: "from stdin",
          });
          assert.equal(put.code, 0, put.stderr);
          assert.match(put.stdout, /^OK \(index \d+\)$/m);
          acknowledged.set("cli-key", "from stdin");
          const get = await cli(["kv", "get", "cli-key", "--server", follower.url]);
          assert.equal(get.stdout, "from stdin\n");
          const miss = await cli(["kv", "get", "nope", "--server", follower.url]);
          assert.equal(miss.code, 1);
          assert.equal(miss.stderr.trim().split("\n").length, 1, miss.stderr);
          assert.match(miss.stderr, /404 key "nope" not found/);
          const bad = await cli(["kv", "get", "--no-such-flag"]);
          assert.equal(bad.code, 2);
          assert.match(bad.stderr, /^error: raftd kv get: Unknown option '--no-such-flag'/);
          const status = await cli(["status", "--json", "--server", follower.url]);
          assert.equal(JSON.parse(status.stdout).leader.id, leader.id);
        },
      );

      await t.step("raftd transfer-leader hands leadership to the named voter", async () => {
        const old = await leaderOf(nodes);
        const target = nodes.find((n) => n !== old)!;
        const via = nodes.find((n) => n !== old && n !== target)!;
        const r = await cli(["transfer-leader", target.id, "--server", via.url]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, `leadership transferred from ${old.id} to ${target.id}\n`);
        await waitFor(`${target.id} leads`, async () => (await target.status()).state === "leader");
      });

      await t.step(
        "garbage on the Raft port and malformed HTTP leave the cluster healthy",
        async () => {
          for (const n of nodes) {
            // A stranger speaking nonsense to the transport.
            const conn = await Deno.connect({ hostname: "127.0.0.1", port: n.raftPort });
            await conn.write(
              new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n" + "\xff".repeat(1000)),
            );
            await conn.write(crypto.getRandomValues(new Uint8Array(65536)));
            await sleep(50);
            conn.close();
            // A client sending a huge declared length and then closing.
            const c2 = await Deno.connect({ hostname: "127.0.0.1", port: n.raftPort });
            await c2.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
            c2.close();
            // Malformed HTTP.
            const c3 = await Deno.connect({ hostname: "127.0.0.1", port: n.httpPort });
            await c3.write(new TextEncoder().encode("BLAH /\r\n\r\n\0\0\0"));
            await sleep(20);
            c3.close();
            for (
              const [method, path, body, want] of [
                ["POST", "/v1/peers", "{oops", 400],
                ["PUT", "/v1/kv/x?cas=zz", "v", 400],
                ["GET", "/v1/nope", undefined, 404],
                ["DELETE", "/v1/status", undefined, 405],
                ["PUT", `/v1/kv/${"x".repeat(2000)}`, "v", 400],
              ] as const
            ) {
              const r = await http(`${n.url}${path}`, { method, body });
              assert.equal(r.status, want, `${method} ${path}: ${r.text}`);
              assert.ok(typeof r.json().error === "string");
            }
          }
          await waitForCluster(nodes, ["n1", "n2", "n3"]);
          const leader = await leaderOf(nodes);
          const r = await http(`${leader.url}/v1/kv/after-garbage`, {
            method: "PUT",
            body: "fine",
          });
          assert.equal(r.status, 200);
          acknowledged.set("after-garbage", "fine");
        },
      );

      await t.step(
        "kill -9 the leader: a new leader, no acknowledged write lost, old leader catches up",
        async () => {
          const old = await leaderOf(nodes);
          // Keep writing through a survivor while the leader dies.
          const survivor = nodes.find((n) => n !== old)!;
          let writing = true;
          let seq = 0;
          const writer = (async () => {
            while (writing) {
              const key = `w${seq++}`;
              try {
                const r = await http(`${survivor.url}/v1/kv/${key}`, { method: "PUT", body: key });
                if (r.status === 200) acknowledged.set(key, key);
              } catch {
                // not acknowledged: may or may not exist
              }
              await sleep(5);
            }
          })();
          await sleep(300);
          await old.stop("SIGKILL");
          await waitFor("a new leader", async () => (await leaderOf(nodes)) !== old);
          await sleep(500);
          writing = false;
          await writer;
          const leader = await leaderOf(nodes);
          assert.notEqual(leader, old);
          for (const n of nodes.filter((x) => x !== old)) {
            for (const [key, value] of acknowledged) {
              const r = await http(`${n.url}/v1/kv/${key}`);
              assert.equal(r.status, 200, `${n.id} lost acknowledged ${key}: ${r.text}`);
              assert.equal(r.text, value);
            }
          }
          old.start(["--bootstrap"]); // ignored: it has state
          await waitForCluster(nodes, ["n1", "n2", "n3"]);
          const commit = (await leader.status()).commitIndex as number;
          await waitFor(
            `${old.id} applied ${commit}`,
            async () => ((await old.status()).appliedIndex as number) >= commit,
          );
          for (const [key, value] of acknowledged) {
            const r = await http(`${old.url}/v1/kv/${key}?consistency=stale`);
            assert.equal(r.text, value, `${old.id} ${key}`);
          }
        },
      );

      await t.step(
        "raftd snapshot, then raftd peers add n4 (InstallSnapshot), then raftd peers remove",
        async () => {
          const leader = await leaderOf(nodes);
          for (const n of nodes) {
            const snap = await cli(["snapshot", "--json", "--server", n.url]);
            assert.equal(snap.code, 0, snap.stderr);
            assert.ok(JSON.parse(snap.stdout).index > 0);
          }
          const n4 = new Node("n4", `${dir}/n4`, extra);
          all.push(n4);
          n4.start();
          await waitFor("n4 serving", async () => {
            try {
              return (await http(`${n4.url}/v1/status`)).status === 200;
            } catch {
              return false;
            }
          });
          const add = await cli([
            "peers",
            "add",
            "--id",
            "n4",
            "--raft",
            n4.raftAddress,
            "--http",
            n4.url,
            "--server",
            nodes[1].url,
          ]);
          assert.equal(add.code, 0, add.stderr);
          await waitForCluster([...nodes, n4], ["n1", "n2", "n3", "n4"]);
          const commit = (await leader.status()).commitIndex as number;
          await waitFor(
            "n4 caught up",
            async () => ((await n4.status()).appliedIndex as number) >= commit,
          );
          const metrics = (await http(`${n4.url}/metrics`)).text;
          assert.match(
            metrics,
            /^raftd_snapshots_installed_total [1-9]/m,
            "n4 should have installed a snapshot",
          );
          for (const [key, value] of acknowledged) {
            const r = await http(`${n4.url}/v1/kv/${key}?consistency=stale`);
            assert.equal(r.text, value, `n4 ${key}`);
          }
          const list = await cli(["peers", "list", "--server", n4.url]);
          assert.match(list.stdout, /n4\s+voter/);
          const rm = await cli(["peers", "remove", "n4", "--server", n4.url]);
          assert.equal(rm.code, 0, rm.stderr);
          await waitForCluster(nodes, ["n1", "n2", "n3"]);
          const peers = (await http(`${leader.url}/v1/peers`)).json<
            { servers: { id: string }[] }
          >();
          assert.deepEqual(peers.servers.map((s) => s.id).sort(), ["n1", "n2", "n3"]);
          await n4.stop();
        },
      );

      await t.step(
        "stop all three and start again: data is there and a leader is elected",
        async () => {
          const statuses = await Promise.all(nodes.map((n) => n.stop("SIGTERM")));
          // A clean shutdown exits 0.
          for (const st of statuses) assert.equal(st?.code, 0);
          for (const n of nodes) {
            n.start(n.id === "n1" ? ["--bootstrap"] : ["--join", nodes[0].url]);
          }
          await waitForCluster(nodes, ["n1", "n2", "n3"]);
          for (const n of nodes) {
            for (const [key, value] of acknowledged) {
              const r = await http(`${n.url}/v1/kv/${key}`);
              assert.equal(r.status, 200, `${n.id} ${key} after restart: ${r.text}`);
              assert.equal(r.text, value);
            }
          }
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
