/**
 * The layers of DESIGN.md hold: no layer imports one above it (the stores
 * take their clock from `src/platform`, not from the node), and
 * `src/raft.ts` stays a facade over `src/node`.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

async function sources(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) files.push(...await sources(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files.sort();
}

/** The code of a file without its comments (JSDoc examples import from anywhere). */
async function code(path: string): Promise<string> {
  const text = await Deno.readTextFile(`${ROOT}${path}`);
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

Deno.test("no layer imports one above it", async () => {
  // What each layer may not import (DESIGN.md: cli, server, raft.ts, node, core, storage, transport, platform).
  const forbidden: Record<string, RegExp> = {
    "src/platform": /from "\.\.\/(?:node|core|storage|transport|server|raft\.ts)/,
    "src/storage": /from "\.\.\/(?:node|transport|server|raft\.ts)/,
    "src/core": /from "\.\.\/(?:node|storage|transport|server|platform|raft\.ts)/,
    "src/node": /from "\.\.\/(?:server|raft\.ts)/,
  };
  const offenders: string[] = [];
  for (const [dir, pattern] of Object.entries(forbidden)) {
    for (const path of await sources(dir)) {
      (await code(path)).split("\n").forEach((line, i) => {
        if (pattern.test(line)) offenders.push(`${path}:${i + 1}: ${line.trim()}`);
      });
    }
  }
  assert.deepEqual(offenders, []);
});

Deno.test("src/raft.ts is a facade of at most 800 lines", async () => {
  const lines = (await Deno.readTextFile(`${ROOT}src/raft.ts`)).split("\n").length - 1;
  assert.ok(lines <= 800, `src/raft.ts has ${lines} lines; move the work into src/node`);
});
