/**
 * The documentation: one page per topic in docs/, each with code (run as
 * tests by the test task), the configuration table matching
 * `DEFAULT_CONFIG`, and the README's library example exiting as soon as it
 * has printed.
 */

import assert from "node:assert/strict";
import { DEFAULT_CONFIG } from "../../mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const TOPICS = [
  "getting-started",
  "storage",
  "membership",
  "reads",
  "snapshots",
  "operations",
  "wire-format",
];

/** The TypeScript code blocks of a markdown text. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

Deno.test("docs/ has a page per topic, each with code that runs", async () => {
  for (const topic of TOPICS) {
    const page = await Deno.readTextFile(`${ROOT}docs/${topic}.md`);
    assert.ok(tsBlocks(page).length > 0, `docs/${topic}.md has no ts code block`);
  }
  // The getting-started page links every other topic.
  const start = await Deno.readTextFile(`${ROOT}docs/getting-started.md`);
  for (const topic of TOPICS.slice(1)) assert.ok(start.includes(`(${topic}.md)`), topic);
});

Deno.test("the configuration table in docs/operations.md is DEFAULT_CONFIG", async () => {
  const page = await Deno.readTextFile(`${ROOT}docs/operations.md`);
  const rows = new Map<string, string>();
  for (const m of page.matchAll(/^\| `(\w+)`\s*\| ([^|]+?)\s*\|/gm)) rows.set(m[1], m[2]);
  for (const [key, value] of Object.entries(DEFAULT_CONFIG)) {
    assert.equal(rows.get(key), String(value), `docs/operations.md: ${key}`);
  }
});

Deno.test("the README's library example exits as soon as it has printed", async () => {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const section = readme.slice(readme.indexOf("## Library example"));
  const example = tsBlocks(section)[0]
    .replaceAll('"./mod.ts"', JSON.stringify(`${ROOT}mod.ts`))
    .replaceAll('"./testing.ts"', JSON.stringify(`${ROOT}testing.ts`));
  const dir = await Deno.makeTempDir({ prefix: "raftd-readme-" });
  const file = `${dir}/example.ts`;
  await Deno.writeTextFile(file, example);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, file],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  };
  const startupDeadline = setTimeout(kill, 120_000);
  let exitDeadline: ReturnType<typeof setTimeout> | undefined;
  try {
    let output = "";
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) {
      output += decoder.decode(chunk, { stream: true });
      if (exitDeadline === undefined && output.includes("\n")) {
        // Printed: from now on the process has a few seconds to end (it used to
        // linger 10 s on a timer that shutdown() left behind).
        exitDeadline = setTimeout(kill, 5_000);
      }
    }
    const status = await child.status;
    const stderr = await new Response(child.stderr).text();
    assert.match(output, /^applied at \d+: counter = 5\n$/, stderr);
    assert.equal(status.signal, null, "still running 5 s after printing: killed");
    assert.equal(status.code, 0, stderr);
  } finally {
    clearTimeout(startupDeadline);
    clearTimeout(exitDeadline);
    kill();
    await Deno.remove(dir, { recursive: true });
  }
});
