/**
 * Every benchmark answers `--help` with its usage (exit 0), and an unknown
 * flag or a malformed value with one line saying what was expected and what
 * was given (exit 2), not a parser's stack trace.
 */

import assert from "node:assert/strict";

const BENCH = new URL("../../bench/", import.meta.url).pathname;
const DENO_JSON = new URL("../../deno.json", import.meta.url).pathname;

/** The benchmarks: every `bench/*.ts` but the shared `_` modules. */
function benches(): string[] {
  return [...Deno.readDirSync(BENCH)]
    .map((e) => e.name)
    .filter((name) => name.endsWith(".ts") && !name.startsWith("_"))
    .sort();
}

async function run(script: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", DENO_JSON, `${BENCH}${script}`, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("every benchmark has a --help usage and refuses an unknown flag in one line", async () => {
  const names = benches();
  assert.ok(names.length >= 7, `expected the benchmarks under bench/, found ${names}`);
  await Promise.all(names.map(async (name) => {
    const help = await run(name, ["--help"]);
    assert.equal(help.code, 0, `${name} --help: exit ${help.code}, stderr ${help.stderr}`);
    assert.match(help.stdout, /^Usage: /, `${name} --help printed ${JSON.stringify(help.stdout)}`);
    assert.match(help.stdout, /--help/);

    const bad = await run(name, ["--", "--no-such-flag"]);
    assert.equal(bad.code, 2, `${name} --no-such-flag: exit ${bad.code}, stderr ${bad.stderr}`);
    assert.equal(bad.stdout, "");
    assert.match(bad.stderr, /^error: .*unknown option '--no-such-flag' \(see .* --help\)\n$/i);
  }));
});

Deno.test("a malformed benchmark flag says what was expected and what was given", async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["http_bench.ts", ["--n", "ten"], /--n must be a positive integer, got "ten"/],
    ["http_bench.ts", ["--op", "post"], /--op must be put, get, health, got "post"/],
    ["raft_bench.ts", ["--conc", "0"], /--conc must be a positive integer, got "0"/],
    ["log_bench.ts", ["--seconds=-1"], /--seconds must be a positive number, got "-1"/],
    ["failover.ts", ["--rounds"], /option --rounds needs a value/],
  ];
  await Promise.all(cases.map(async ([name, args, expected]) => {
    const r = await run(name, args);
    assert.equal(r.code, 2, `${name} ${args.join(" ")}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, /^error: [^\n]*\n$/, `${name}: ${JSON.stringify(r.stderr)}`);
    assert.match(r.stderr, expected);
  }));
});
