/**
 * End-to-end: a backup taken under write load, checked, restored into a
 * new cluster that serves every key the backup holds, which others join;
 * damaged backups are refused and change nothing.
 */

import { strict as assert } from "node:assert";
import { cli, e2eTest, http, leaderOf, Node, step, waitFor, waitForCluster } from "./helpers.ts";

interface Write {
  value: string;
  index: number;
}

e2eTest({
  name: "e2e: backup under write load → inspect → restore → serve → join",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-backup-" });
    const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`));
    const r1 = new Node("r1", `${dir}/r1`);
    const r2 = new Node("r2", `${dir}/r2`);
    const all = [...nodes, r1, r2];
    const file = `${dir}/backup.snap`;
    // Every acknowledged write with its index; keys whose write had an unknown outcome.
    const acked = new Map<string, Write[]>();
    const uncertain = new Set<string>();
    let ok = false;
    try {
      await step(t, "a three-node cluster", async () => {
        nodes[0].start(["--bootstrap"]);
        await waitFor("n1 healthy", () => nodes[0].healthy());
        nodes[1].start(["--join", nodes[0].url]);
        nodes[2].start(["--join", nodes[0].url]);
        await waitForCluster(nodes, ["n1", "n2", "n3"]);
      });

      let backupIndex = 0;
      await step(t, "raftd snapshot save through a follower while four clients write", async () => {
        const leader = await leaderOf(nodes);
        const follower = nodes.find((n) => n !== leader)!;
        let writing = true;
        const writer = async (w: number) => {
          for (let seq = 0; writing; seq++) {
            // Unique keys, plus a few hot keys overwritten again and again.
            const key = seq % 5 === 0 ? `hot-${seq % 3}` : `w${w}-${seq}`;
            const value = `${w}:${seq}`;
            const via = nodes[(w + seq) % nodes.length];
            try {
              const r = await http(`${via.url}/v1/kv/${key}`, { method: "PUT", body: value });
              if (r.status === 200) {
                const list = acked.get(key) ?? [];
                list.push({ value, index: r.json<{ index: number }>().index });
                acked.set(key, list);
              } else uncertain.add(key);
            } catch {
              uncertain.add(key);
            }
          }
        };
        const writers = [0, 1, 2, 3].map(writer);
        // Some writes acknowledged before the save, however slowly the machine runs.
        await waitFor("20 writes acknowledged", () => acked.size >= 20);
        const ackedBefore = new Map([...acked].map(([k, v]) => [k, v.at(-1)!]));
        const save = await cli(["snapshot", "save", file, "--json", "--server", follower.url]);
        try {
          assert.equal(save.code, 0, save.stderr);
          backupIndex = JSON.parse(save.stdout).index;
          // Writes go on past the backup however slowly the machine runs.
          await waitFor(
            "a write acknowledged past the backup's index",
            () => [...acked.values()].some((ws) => ws.some((w) => w.index > backupIndex)),
          );
        } finally {
          writing = false;
          await Promise.all(writers);
        }
        const saved = JSON.parse(save.stdout);
        assert.equal(saved.file, file);
        assert.equal(saved.bytes, (await Deno.stat(file)).size);
        assert.match(saved.checksum, /^crc32c:[0-9a-f]{8}$/);
        // Everything acknowledged before the save began is in it.
        for (const [key, w] of ackedBefore) {
          assert.ok(w.index <= backupIndex, `${key} acknowledged at ${w.index} before the save`);
        }
        const after = [...acked.values()].flat().filter((w) => w.index > backupIndex).length;
        assert.ok(after > 0, "writes continued during and after the backup");
        await assert.rejects(Deno.stat(`${file}.part`), Deno.errors.NotFound);
      });

      let expected = new Map<string, string>();
      await step(t, "raftd snapshot inspect checks the file and says what it holds", async () => {
        const r = await cli(["snapshot", "inspect", file, "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const info = JSON.parse(r.stdout);
        assert.equal(info.index, backupIndex);
        assert.equal(info.verified, true);
        assert.ok(info.term >= 1);
        assert.deepEqual(
          info.configuration.servers.map((s: { id: string }) => s.id).sort(),
          ["n1", "n2", "n3"],
        );
        assert.equal(info.clusterId, (await nodes[0].status()).clusterId);
        // The state as of the backup's index: the last acknowledged write at or before it.
        expected = new Map();
        for (const [key, writes] of acked) {
          // Responses arrive in any order: the state holds the write with the highest index.
          const last = writes.filter((w) => w.index <= backupIndex)
            .sort((x, y) => x.index - y.index).at(-1);
          if (last) expected.set(key, last.value);
        }
        if (uncertain.size === 0) assert.equal(info.keys, expected.size);
        const text = await cli(["snapshot", "inspect", file]);
        assert.equal(text.code, 0, text.stderr);
        for (const field of ["index:", "term:", "size:", "checksum:", "configuration"]) {
          assert.ok(text.stdout.includes(field), `${field} in\n${text.stdout}`);
        }
      });

      await step(
        t,
        "damaged, truncated or missing files are refused and change nothing",
        async () => {
          const bytes = await Deno.readFile(file);
          const truncated = `${dir}/truncated.snap`;
          await Deno.writeFile(truncated, bytes.subarray(0, bytes.length - 10));
          const flipped = `${dir}/flipped.snap`;
          const copy = bytes.slice();
          copy[copy.length - 20] ^= 0xff;
          await Deno.writeFile(flipped, copy);
          const extra = `${dir}/extra.snap`;
          await Deno.writeFile(extra, new Uint8Array([...bytes, 1, 2, 3]));
          const header = `${dir}/header.snap`;
          const h = bytes.slice();
          h[20] ^= 0x01;
          await Deno.writeFile(header, h);
          for (
            const [path, pattern] of [
              [truncated, /truncated: the header announces \d+ bytes of state, the file has \d+/],
              [flipped, /the state is damaged: its checksum is crc32c:\w+, the header says/],
              [extra, /more than the \d+ bytes of state the header announces/],
              [header, /the header is damaged/],
              [`${dir}/missing.snap`, /cannot read it/],
            ] as const
          ) {
            const r = await cli(["snapshot", "inspect", path]);
            assert.equal(r.code, 1, `${path}: ${r.stdout}`);
            assert.match(r.stderr, pattern);
            assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
            const j = await cli(["snapshot", "inspect", path, "--json"]);
            assert.equal(j.code, 1);
            assert.match(JSON.parse(j.stderr).error, pattern);
          }
          const target = `${dir}/never`;
          const r = await cli([
            "snapshot",
            "restore",
            flipped,
            "--data",
            target,
            "--id",
            "x1",
            "--raft",
            "127.0.0.1:1",
            "--http",
            "127.0.0.1:2",
          ]);
          assert.equal(r.code, 1, r.stdout);
          assert.match(r.stderr, /the state is damaged.*\(nothing was restored\)/);
          await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
          const usage = await cli(["snapshot", "restore", file, "--id", "x1"]);
          assert.equal(usage.code, 2);
          assert.match(usage.stderr, /--data is required/);
        },
      );

      await step(t, "restore into a new one-node cluster that serves every key", async () => {
        const restore = [
          "snapshot",
          "restore",
          file,
          "--data",
          r1.dataDir,
          "--id",
          "r1",
          "--raft",
          r1.raftAddress,
          "--http",
          `127.0.0.1:${r1.httpPort}`,
        ];
        const r = await cli([...restore, "--json"]);
        assert.equal(r.code, 0, r.stderr);
        const restored = JSON.parse(r.stdout);
        assert.equal(restored.index, backupIndex);
        // A second restore into the same directory changes nothing.
        const again = await cli(restore);
        assert.equal(again.code, 1);
        assert.match(again.stderr, /is not empty/);

        r1.start(); // no --bootstrap
        await waitFor("r1 leads", async () => (await r1.status()).state === "leader");
        const st = await r1.status();
        assert.equal(st.clusterId, restored.clusterId);
        assert.notEqual(st.clusterId, (await nodes[0].status()).clusterId);
        assert.deepEqual((st.configuration as { id: string }[]).map((s) => s.id), ["r1"]);

        const list = (await http(`${r1.url}/v1/kv/`)).json<{ keys: string[] }>();
        for (const key of list.keys) {
          assert.ok(expected.has(key) || uncertain.has(key), `unexpected key ${key}`);
        }
        for (const [key, value] of expected) {
          const got = await http(`${r1.url}/v1/kv/${key}`);
          if (uncertain.has(key)) continue;
          assert.equal(got.status, 200, `${key}: ${got.text}`);
          assert.equal(got.text, value, key);
          assert.ok(Number(got.headers.get("x-raft-index")) <= backupIndex);
        }
        assert.ok(expected.size > 20, `only ${expected.size} keys in the backup`);
        // New writes get indexes above every restored key's.
        const put = await http(`${r1.url}/v1/kv/after-restore`, { method: "PUT", body: "new" });
        assert.equal(put.status, 200, put.text);
        assert.ok(put.json<{ index: number }>().index > backupIndex);
      });

      await step(t, "another node joins the restored cluster and gets every key", async () => {
        r2.start(["--join", r1.url]);
        await waitForCluster([r1, r2], ["r1", "r2"]);
        assert.equal((await r2.status()).clusterId, (await r1.status()).clusterId);
        const commit = (await r1.status()).commitIndex as number;
        await waitFor(
          "r2 caught up",
          async () => (await r2.status()).appliedIndex as number >= commit,
        );
        for (const [key, value] of expected) {
          if (uncertain.has(key)) continue;
          const got = await http(`${r2.url}/v1/kv/${key}?consistency=stale`);
          assert.equal(got.text, value, `r2 ${key}`);
        }
        // A backup of the new cluster, from a follower without asking the leader.
        const stale = await cli([
          "snapshot",
          "save",
          `${dir}/r.snap`,
          "--stale",
          "--json",
          "--server",
          r2.url,
        ]);
        assert.equal(stale.code, 0, stale.stderr);
        assert.equal(JSON.parse(stale.stdout).server, "r2");
      });

      await step(t, "bare raftd snapshot still compacts; with nothing new it exits 0", async () => {
        const first = await cli(["snapshot", "--json", "--server", r1.url]);
        assert.equal(first.code, 0, first.stderr);
        const second = await cli(["snapshot", "--server", r1.url]);
        assert.equal(second.code, 0, second.stderr);
        assert.match(second.stdout, /^nothing new to compact/);
      });
      ok = true;
    } finally {
      if (!ok) { for (const n of all) console.error(`--- ${n.id} logs ---\n${n.logs()}`); }
      await Promise.all(all.map((n) => n.stop("SIGKILL")));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
