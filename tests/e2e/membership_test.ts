/**
 * End-to-end: membership that cannot surprise (taken addresses, silent
 * moves, a removed server exits 0) and `raftd status --cluster`.
 */

import { strict as assert } from "node:assert";
import { cli, e2eTest, http, leaderOf, Node, step, waitFor, waitForCluster } from "./helpers.ts";

interface Row {
  id: string;
  state: string | null;
  term: number | null;
  commitIndex: number | null;
  appliedIndex: number | null;
  lag: number | null;
  version: string | null;
  health: string;
}

e2eTest({
  name: "e2e: peers add/remove refuse surprises; a removed server exits 0; status --cluster",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-membership-" });
    const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`));
    let ok = false;
    try {
      await step(t, "a three-node cluster; status --cluster shows every member", async () => {
        nodes[0].start(["--bootstrap"]);
        await waitFor("n1 healthy", () => nodes[0].healthy());
        nodes[1].start(["--join", nodes[0].url]);
        nodes[2].start(["--join", nodes[0].url]);
        await waitForCluster(nodes, ["n1", "n2", "n3"]);
        const r = await cli(["status", "--cluster", "--json", "--server", nodes[2].url]);
        assert.equal(r.code, 0, r.stderr);
        const rows = JSON.parse(r.stdout) as Row[];
        assert.deepEqual(rows.map((x) => x.id).sort(), ["n1", "n2", "n3"]);
        const leader = await leaderOf(nodes);
        for (const row of rows) {
          assert.equal(row.health, "ok", JSON.stringify(row));
          assert.equal(row.state, row.id === leader.id ? "leader" : "follower");
          assert.ok(row.term! >= 1 && row.commitIndex! >= 1 && row.appliedIndex! >= 1);
          assert.equal(typeof row.lag, "number");
          assert.match(row.version!, /^\d+\.\d+\.\d+/);
        }
        for (const key of ["app/a", "app/b", "other"]) {
          assert.equal((await cli(["kv", "put", key, "v", "--server", nodes[1].url])).code, 0);
        }
        const list = await cli(["kv", "list", "--prefix", "app/", "--server", nodes[2].url]);
        assert.equal(list.stdout, "app/a\napp/b\n", list.stderr);
        const text = await cli(["status", "--cluster", "--server", nodes[0].url]);
        assert.equal(text.code, 0, text.stderr);
        assert.match(
          text.stdout,
          /^ID\s+STATE\s+TERM\s+COMMIT\s+APPLIED\s+LAG\s+VERSION\s+HEALTH$/m,
        );
        assert.equal(text.stdout.trim().split("\n").length, 4);
      });

      await step(t, "taken addresses and silent moves are refused, with what to do", async () => {
        const taken = await cli([
          "peers",
          "add",
          "n9",
          "--raft",
          nodes[1].raftAddress,
          "--server",
          nodes[0].url,
        ]);
        assert.equal(taken.code, 1, taken.stdout);
        assert.match(taken.stderr, /failed: 409 cannot add n9 at \S+: server n2 has that address/);
        const moved = await cli([
          "peers",
          "add",
          "n2",
          "--raft",
          "127.0.0.1:1",
          "--json",
          "--server",
          nodes[0].url,
        ]);
        assert.equal(moved.code, 1);
        assert.match(
          JSON.parse(moved.stderr).error,
          /already a member at raft address \S+, not 127\.0\.0\.1:1; remove it first/,
        );
        const twice = await cli(["peers", "add", "n4", "--id", "n5", "--raft", "127.0.0.1:2"]);
        assert.equal(twice.code, 2);
        assert.match(twice.stderr, /the server ID is given twice/);
        const peers = (await http(`${nodes[0].url}/v1/peers`)).json<
          { servers: { id: string; raft: string }[] }
        >();
        assert.deepEqual(peers.servers.map((s) => s.id).sort(), ["n1", "n2", "n3"]);
        assert.equal(peers.servers.find((s) => s.id === "n2")?.raft, nodes[1].raftAddress);
      });

      await step(t, "a removed server learns it and exits 0; the others go on", async () => {
        const leader = await leaderOf(nodes);
        const gone = nodes.find((n) => n !== leader)!;
        const rm = await cli(["peers", "remove", gone.id, "--server", leader.url]);
        assert.equal(rm.code, 0, rm.stderr);
        const status = await Promise.race([
          gone.child!.status,
          new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000)),
        ]);
        assert.ok(status, `${gone.id} still running 20 s after its removal`);
        assert.equal(status.code, 0, gone.logs());
        await gone.stop();
        assert.match(gone.logs(), /was removed from the cluster/);
        const rest = nodes.filter((n) => n !== gone);
        await waitForCluster(rest, rest.map((n) => n.id));
        const put = await http(`${leader.url}/v1/kv/after-removal`, { method: "PUT", body: "x" });
        assert.equal(put.status, 200, put.text);
        const r = await cli(["status", "--cluster", "--json", "--server", rest[0].url]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          (JSON.parse(r.stdout) as Row[]).map((x) => x.id).sort(),
          rest.map((n) => n.id).sort(),
        );
      });

      await step(t, "status --cluster exits 1 and says which member is down", async () => {
        // Three members, so the leader keeps its quorum with one down: with
        // two, it steps down an election timeout after the kill (check
        // quorum), and every member would rightly be reported unhealthy.
        const joiner = new Node("n4", `${dir}/n4`);
        nodes.push(joiner);
        joiner.start(["--join", (await leaderOf(nodes)).url]);
        const members = nodes.filter((n) => n.child);
        await waitForCluster(members, members.map((n) => n.id));
        const leader = await leaderOf(nodes);
        const down = members.find((n) => n !== leader)!;
        const up = members.filter((n) => n !== down);
        await down.stop("SIGKILL");
        // Polled: a loaded machine may stall a member past an election
        // timeout, and it is unhealthy until it hears from the leader again.
        await waitFor(`status --cluster to report ${down.id} down and the others ok`, async () => {
          const r = await cli(["status", "--cluster", "--json", "--server", leader.url]);
          const seen = `exit ${r.code}; stdout: ${r.stdout}; stderr: ${r.stderr}`;
          assert.equal(r.code, 1, seen);
          const rows = JSON.parse(r.stdout) as Row[];
          assert.deepEqual(rows.map((x) => x.id).sort(), members.map((n) => n.id).sort(), seen);
          assert.match(rows.find((x) => x.id === down.id)!.health, /^unreachable: /, seen);
          for (const n of up) assert.equal(rows.find((x) => x.id === n.id)!.health, "ok", seen);
          assert.match(
            JSON.parse(r.stderr).error,
            new RegExp(`1 of 3 members are not healthy: ${down.id} \\(unreachable: `),
            seen,
          );
          return true;
        });
      });
      ok = true;
    } finally {
      if (!ok) { for (const n of nodes) console.error(`--- ${n.id} logs ---\n${n.logs()}`); }
      await Promise.all(nodes.map((n) => n.stop("SIGKILL")));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
