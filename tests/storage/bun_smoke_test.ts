/**
 * Runs bun_smoke.ts under Bun (`npx -y bun@1.4.4`) when Bun can be run here;
 * skipped otherwise.
 */
import { strict as assert } from "node:assert";

import { bunRunnable, runUnderBun } from "../_bun.ts";

const SCRIPT = new URL("./bun_smoke.ts", import.meta.url).pathname;
const runnable = await bunRunnable();

Deno.test({
  name: "bun: the storage layer works on node:fs under Bun",
  ignore: !runnable,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "raftd_bun_" });
    try {
      const out = await runUnderBun(SCRIPT, [dir]);
      const { stdout, stderr } = out;
      if (!out.success && /Cannot find (package|module) '@logtape|Could not resolve/.test(stderr)) {
        // Bun resolves npm packages itself (no deno.json import map); without a
        // registry or node_modules it cannot load LogTape: not our failure.
        console.log(`skipped: bun cannot resolve dependencies here: ${stderr.slice(0, 200)}`);
        return;
      }
      assert.ok(out.success, `bun failed (code ${out.code}): ${stdout}\n${stderr}`);
      assert.match(stdout, /^ok runtime=bun segments=\d+ entries=350$/m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
