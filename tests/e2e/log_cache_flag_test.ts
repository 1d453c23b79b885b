/**
 * `raftd serve --log-cache-bytes N` bounds the leader's entry cache (the
 * library's `logCacheBytes`): 0 keeps no durable entry in memory, the default
 * keeps the newest; a value that is not a non-negative integer is refused.
 */

import { strict as assert } from "node:assert";
import { cli, e2eTest, http, Node, waitFor } from "./helpers.ts";

/** A metric's value as /metrics shows it. */
async function metric(node: Node, name: string): Promise<number> {
  const text = (await http(`${node.url}/metrics`)).text;
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  assert.ok(m, `${name} is on /metrics`);
  return Number(m[1]);
}

e2eTest({
  name: "e2e: raftd serve --log-cache-bytes bounds the entries the leader keeps in memory",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-cache-" });
    const none = new Node("n1", `${dir}/none`, ["--log-cache-bytes", "0"]);
    const dflt = new Node("n1", `${dir}/default`);
    let ok = false;
    try {
      none.start(["--bootstrap"]);
      dflt.start(["--bootstrap"]);
      for (const node of [none, dflt]) {
        await waitFor(`${node.dataDir} healthy`, () => node.healthy());
        for (let i = 0; i < 20; i++) {
          const r = await http(`${node.url}/v1/kv/k${i}`, { method: "PUT", body: "x".repeat(100) });
          assert.equal(r.status, 200, r.text);
        }
      }
      assert.equal(await metric(none, "raftd_log_entries_in_memory"), 0);
      assert.equal(await metric(none, "raftd_log_bytes_in_memory"), 0);
      assert.ok(await metric(dflt, "raftd_log_entries_in_memory") >= 20);

      const bad = await cli([
        "serve",
        "--id",
        "n1",
        "--data",
        `${dir}/bad`,
        "--log-cache-bytes",
        "4MiB",
      ]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /--log-cache-bytes must be an integer from 0 to \d+, got "4MiB"/);
      const help = await cli(["serve", "--help"]);
      assert.match(help.stdout, /--log-cache-bytes N .*\(default 4194304\)/s);
      ok = true;
    } finally {
      await Promise.all([none.stop(), dflt.stop()]);
      if (!ok) console.error(none.logs(), "\n", dflt.logs());
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
