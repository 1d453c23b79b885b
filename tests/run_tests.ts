/**
 * Runs the whole test suite and ends with one line `N passed, N failed`
 * (read by CI): the tests under tests/, then the code of docs/, the README
 * and the public entry points' examples, each code block run as a test
 * (`deno test --doc`). Every other JSDoc example is type-checked by
 * `deno task check`. Extra arguments are passed to `deno test`; naming paths
 * runs only those.
 *
 * @module
 */

/** Code whose examples run, not only type-check: what a new user reads first. */
const DOC_PATHS = ["docs/", "README.md", "mod.ts", "testing.ts", "src/raft.ts", "src/testing/"];

/** Counts of one `deno test` run. */
interface RunResult {
  passed: number;
  failed: number;
}

async function denoTest(args: string[]): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--no-check=remote", ...args],
    stdout: "piped",
    stderr: "inherit",
    env: { NO_COLOR: "1" },
  }).spawn();
  let tail = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
  }
  const status = await child.status;
  // Deno's summary: "ok | 12 passed (3 steps) | 0 failed (1s)" or "FAILED | 1 passed | 2 failed".
  const summary = [...tail.matchAll(/(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/g)].at(-1);
  const passed = summary ? Number(summary[1]) : 0;
  let failed = summary ? Number(summary[2]) : 0;
  if (!status.success && failed === 0) failed = 1; // a crash or a type error fails the run too
  return { passed, failed };
}

const pathsGiven = Deno.args.some((a) => !a.startsWith("-"));
const runs = [await denoTest(pathsGiven ? Deno.args : [...Deno.args, "tests/"])];
if (!pathsGiven) runs.push(await denoTest([...Deno.args, "--doc", ...DOC_PATHS]));
const passed = runs.reduce((n, r) => n + r.passed, 0);
const failed = runs.reduce((n, r) => n + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);
