/**
 * The library runs on Node.js 20 as published (JSR's npm packages are not
 * polyfilled): the source must not use what Node.js 20 lacks. The Node.js
 * smoke test catches it on the paths it runs; this catches it everywhere.
 */

import assert from "node:assert/strict";

/** APIs newer than Node.js 20, with what to use instead. */
const NEWER_THAN_NODE_20: Array<[RegExp, string]> = [
  [/Promise\.withResolvers\b/, "deferred() from src/deferred.ts"],
  [/Array\.fromAsync\b/, "a for await loop"],
  [/\b(Object|Map)\.groupBy\b/, "a loop"],
  [/\.(union|intersection|difference|symmetricDifference|isSubsetOf|isSupersetOf)\(/, "a loop"],
];

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* sources(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

Deno.test("library code uses nothing that Node.js 20 lacks", async () => {
  const root = new URL("../../", import.meta.url).pathname;
  const found: string[] = [];
  for (const dir of ["src", "cli"]) {
    for await (const path of sources(`${root}${dir}`)) {
      const lines = (await Deno.readTextFile(path)).split("\n");
      lines.forEach((line, i) => {
        // JSDoc and comments may name them.
        if (/^\s*(\*|\/\/)/.test(line)) return;
        for (const [pattern, instead] of NEWER_THAN_NODE_20) {
          if (pattern.test(line)) found.push(`${path.slice(root.length)}:${i + 1}: use ${instead}`);
        }
      });
    }
  }
  assert.deepEqual(found, []);
});
