/**
 * Bun and Node.js get the dependency versions Deno gets: package.json pins
 * exactly what deno.json's import map pins, and Bun, running without
 * node_modules/ (its auto-install mode), resolves those versions rather than
 * the newest ones.
 */

import assert from "node:assert/strict";
import { bunRunnable, runUnderBun } from "../_bun.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
const packageJson = JSON.parse(await Deno.readTextFile(`${ROOT}package.json`));

/**
 * `{ "@logtape/logtape": "1.3.11", … }` from the `npm:` entries of deno.json's
 * imports (a target may name a file in the package after the version).
 */
function denoPins(): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const target of Object.values(denoJson.imports as Record<string, string>)) {
    const m = /^npm:(@?[^@]+)@([^/]+)/.exec(target);
    if (m) pins[m[1]] = m[2];
  }
  return pins;
}

Deno.test("package.json pins every runtime dependency at deno.json's version", () => {
  const pins = denoPins();
  // What the library and the daemon import; test-only tools (fast-check) are not needed.
  for (const name of ["@logtape/logtape", "@msgpack/msgpack"]) {
    assert.equal(packageJson.dependencies?.[name], pins[name], name);
    assert.match(packageJson.dependencies[name], /^\d+\.\d+\.\d+$/, `${name} is an exact version`);
  }
  assert.equal(denoJson.nodeModulesDir, "none", "Deno must not switch to node_modules/");
});

Deno.test("Deno loads MessagePack's ES module build, not the CommonJS one", () => {
  // @msgpack/msgpack has no `exports`, so its bare name resolves to `main`,
  // the CommonJS build, and loading CommonJS starts Deno's Node.js
  // compatibility layer: 5 MB more in every process (51–55 → 47–48 MB for a
  // program importing mod.ts).
  const resolved = import.meta.resolve("@msgpack/msgpack");
  assert.match(resolved, /\/dist\.esm\/index\.mjs$/, resolved);
});

Deno.test({
  name: "bun without node_modules resolves the pinned versions",
  ignore: !(await bunRunnable()),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "raftd-bun-pins-" });
    try {
      await Deno.copyFile(`${ROOT}package.json`, `${dir}/package.json`);
      const script = `${dir}/resolve.ts`;
      await Deno.writeTextFile(
        script,
        'console.log(import.meta.resolve("@logtape/logtape"));\n' +
          'console.log(import.meta.resolve("@msgpack/msgpack"));\n',
      );
      const out = await runUnderBun(script);
      assert.ok(out.success, out.stderr);
      const [logtape, msgpack] = out.stdout.trim().split("\n");
      const pins = denoPins();
      assert.ok(logtape.includes(`@logtape/logtape@${pins["@logtape/logtape"]}`), logtape);
      assert.ok(msgpack.includes(`@msgpack/msgpack@${pins["@msgpack/msgpack"]}`), msgpack);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
