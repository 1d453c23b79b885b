/**
 * Security, honest outcomes under disk faults: the leader's data directory
 * is a small tmpfs (its own mount namespace, so the test needs `unshare`
 * with mount rights: root, as in CI) that fills up under writes. A write in
 * flight when the leader's disk fails may already be on the followers and
 * commit under the next leader: it must be reported with outcome "unknown"
 * (503), never as failed (500 "storage failure").
 */

import { strict as assert } from "node:assert";
import { e2eTest, http, leaderOf, Node, waitFor, waitForCluster } from "../e2e/helpers.ts";

async function canMountTmpfs(): Promise<boolean> {
  try {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-mount-" });
    try {
      const out = await new Deno.Command("unshare", {
        args: ["-m", "sh", "-c", `mount -t tmpfs -o size=1m tmpfs ${dir}`],
        stdout: "null",
        stderr: "null",
      }).output();
      return out.success;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  } catch {
    return false;
  }
}

const MOUNTS = await canMountTmpfs();

e2eTest({
  name: "security: a write in flight when the leader's disk fills is reported unknown, not failed",
  ignore: !MOUNTS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "raftd-sec-disk-" });
    const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`));
    let ok = false;
    try {
      // n1's data directory is a 6 MiB tmpfs seen only by its process.
      await Deno.mkdir(nodes[0].dataDir, { recursive: true });
      nodes[0].wrapper = [
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs -o size=6m,mode=0700 tmpfs "$0" && exec "$@"',
        nodes[0].dataDir,
      ];
      nodes[0].start(["--bootstrap"]);
      await waitFor("n1 healthy", () => nodes[0].healthy());
      nodes[1].start(["--join", nodes[0].url]);
      nodes[2].start(["--join", nodes[0].url]);
      await waitForCluster(nodes, ["n1", "n2", "n3"]);
      assert.equal((await leaderOf(nodes)).id, "n1");

      // Fill n1's disk with 256 KiB values, eight writers at a time, until it fails.
      const value = new Uint8Array(256 * 1024).fill(120);
      const answers = new Map<string, { status: number; body: Record<string, unknown> }>();
      let failed = false;
      let next = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (!failed && next < 200) {
          const key = `fill-${next++}`;
          try {
            const r = await http(`${nodes[0].url}/v1/kv/${key}`, { method: "PUT", body: value });
            let body: Record<string, unknown> = {};
            try {
              body = r.json();
            } catch {
              // not JSON
            }
            answers.set(key, { status: r.status, body });
            if (r.status !== 200) failed = true;
          } catch {
            failed = true; // the process is gone
          }
        }
      }));
      assert.ok(failed, "n1's disk filled up");

      // n2 and n3 carry on; what they commit is the truth.
      const survivors = nodes.slice(1);
      await waitFor("a new leader", async () => {
        const l = await leaderOf(survivors).catch(() => undefined);
        return l !== undefined;
      }, 30_000);
      const leader = await leaderOf(survivors);
      const barrier = await http(`${leader.url}/v1/kv/after-disk-full`, {
        method: "PUT",
        body: "1",
      });
      assert.equal(barrier.status, 200, barrier.text);

      let inFlight = 0;
      for (const [key, { status, body }] of answers) {
        if (status === 200) continue;
        const got = await http(`${leader.url}/v1/kv/${key}`);
        const committed = got.status === 200;
        if (body.outcome !== undefined) inFlight++;
        // A write refused after the node stopped was never proposed: 500 is
        // honest for it. One that committed must not have been called failed.
        if (committed) {
          assert.ok(
            body.outcome === "unknown" || body.outcome === "committed",
            `${key} committed but was answered ${status} ${JSON.stringify(body)}`,
          );
        }
      }
      assert.ok(inFlight > 0, "some writes were in flight when the disk failed");
      ok = true;
    } finally {
      for (const n of nodes) await n.stop();
      if (!ok) { for (const n of nodes) console.error(n.logs()); }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
