/**
 * Runs bun_smoke.ts under Bun (`npx -y bun@1.4.4`), which exercises the
 * node:net / node:tls platform code; skipped when Bun cannot be run here.
 */
import assert from "node:assert/strict";

import { bunRunnable, runUnderBun } from "../_bun.ts";

const SCRIPT = new URL("./bun_smoke.ts", import.meta.url).pathname;
const runnable = await bunRunnable();

Deno.test({
  name: "bun: the TCP transport works on node:net and node:tls under Bun",
  ignore: !runnable,
  async fn() {
    const out = await runUnderBun(SCRIPT);
    const { stdout, stderr } = out;
    if (!out.success && /Cannot find (package|module) '@|Could not resolve/.test(stderr)) {
      // Bun resolves npm packages itself (no deno.json import map); without a
      // registry or node_modules it cannot load them: not the transport's failure.
      console.log(`skipped: bun cannot resolve dependencies here: ${stderr.slice(0, 200)}`);
      return;
    }
    assert.ok(out.success, `bun failed (code ${out.code}): ${stdout}\n${stderr}`);
    assert.match(stdout, /^ok runtime=bun messages=10000 snapshot=5242880$/m);
  },
});
