/**
 * All time and scheduling of the node goes through its injectable Clock
 * (issue 11): no `Date.now()`, `new Date()`, `performance.now()`,
 * `setTimeout` or `setInterval` in src/raft.ts, src/node, src/core or
 * src/storage, outside the module that implements the real Clock. This is
 * what lets the simulation run the real node on virtual time; one ambient
 * timer would make a seed unreplayable or a pause invisible.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const SCOPE = ["src/raft.ts", "src/node", "src/core", "src/storage"];

/** Code without comments and string contents (template holes kept), so prose and messages do not count. */
function codeOnly(source: string): string {
  let out = "";
  let i = 0;
  const n = source.length;
  while (i < n) {
    const c = source[i];
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < n && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
      out += " ";
    } else if (c === '"' || c === "'" || c === "`") {
      i++;
      while (i < n && source[i] !== c) {
        if (source[i] === "\\") i++;
        else if (c === "`" && source[i] === "$" && source[i + 1] === "{") {
          // A template hole is code.
          let depth = 1;
          i += 2;
          let hole = "";
          while (i < n && depth > 0) {
            if (source[i] === "{") depth++;
            else if (source[i] === "}") depth--;
            if (depth > 0) hole += source[i];
            i++;
          }
          out += ` ${codeOnly(hole)} `;
          continue;
        }
        i++;
      }
      i++;
      out += '""';
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const FORBIDDEN: Array<[RegExp, string]> = [
  [/\bDate\s*\.\s*now\s*\(/, "Date.now()"],
  [/\bnew\s+Date\s*\(\s*\)/, "new Date()"],
  [/\bperformance\s*\.\s*now\s*\(/, "performance.now()"],
  [/(?:^|[^.\w$#])(?:setTimeout|setInterval|setImmediate)\s*\(/m, "a global timer"],
  [/\bglobalThis\s*\.\s*(?:setTimeout|setInterval|setImmediate)\b/, "a global timer"],
];

/** What in `source` reads ambient time or schedules on the runtime's timers. */
function ambientTime(source: string): string[] {
  const code = codeOnly(source);
  return FORBIDDEN.filter(([re]) => re.test(code)).map(([, what]) => what);
}

async function* sourceFiles(path: string): AsyncGenerator<string> {
  const url = new URL(path, ROOT);
  const info = await Deno.stat(url);
  if (info.isFile) {
    if (path.endsWith(".ts")) yield path;
    return;
  }
  for await (const entry of Deno.readDir(url)) {
    yield* sourceFiles(`${path}/${entry.name}`);
  }
}

Deno.test("the scan finds ambient time and timers in code, not in comments or strings", () => {
  assert.deepEqual(ambientTime("const t = Date.now();"), ["Date.now()"]);
  assert.deepEqual(ambientTime("const d = new Date();"), ["new Date()"]);
  assert.deepEqual(ambientTime("x = performance.now()"), ["performance.now()"]);
  assert.deepEqual(ambientTime("setTimeout(() => {}, 5);"), ["a global timer"]);
  assert.deepEqual(ambientTime("  const h = setInterval(f, 5);"), ["a global timer"]);
  assert.deepEqual(ambientTime("globalThis.setTimeout(f, 1)"), ["a global timer"]);
  assert.deepEqual(ambientTime("const m = `at ${Date.now()}`;"), ["Date.now()"]);
  assert.deepEqual(ambientTime("this.#clock.setTimeout(f, 5); clock.setTimeout(f, 1);"), []);
  assert.deepEqual(ambientTime("// Date.now() is not used\n/* setTimeout(f) */ const a = 1;"), []);
  assert.deepEqual(ambientTime('throw new Error("no setTimeout( or Date.now() here");'), []);
  assert.deepEqual(ambientTime("new Date(ms).toISOString()"), []);
});

Deno.test("src/raft.ts, src/node, src/core and src/storage take time only from the Clock", async () => {
  const offenders: string[] = [];
  let files = 0;
  for (const root of SCOPE) {
    for await (const path of sourceFiles(root)) {
      const source = await Deno.readTextFile(new URL(path, ROOT));
      // The real Clock is where the runtime's time and timers live.
      if (/\bexport\s+class\s+RealClock\b/.test(source)) continue;
      files++;
      for (const what of ambientTime(source)) offenders.push(`${path}: ${what}`);
      // The scan keeps its footing through the whole file (a quote in a
      // regular expression could make it read the rest as a string).
      assert.deepEqual(ambientTime(`${source}\nDate.now();\n`), ["Date.now()"], path);
    }
  }
  assert.ok(files > 20, `only ${files} files scanned`);
  assert.deepEqual(offenders, [], "use the injectable Clock instead");
});
