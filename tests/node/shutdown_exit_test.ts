/**
 * A program that uses the library exits on its own once `shutdown()`
 * resolves: the node leaves no timer, channel or socket behind (issue 11,
 * defect 4: a `setTimeout(storageTimeout)` kept every program, the README
 * example included, alive for that long after shutdown).
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const PROGRAM = new URL("./fixtures/exit_after_shutdown.ts", import.meta.url).pathname;
/** Far more than a clean exit needs, far less than the program's 120 s storage timeout. */
const EXIT_DEADLINE_MS = 15_000;

async function runUntilExit(mode: string): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, PROGRAM, mode],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let killer: ReturnType<typeof setTimeout> | undefined;
  let resolvedAt: number | undefined;
  try {
    // The whole run (start, election, apply, shutdown) gets a deadline too.
    killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const decoder = new TextDecoder();
    let out = "";
    for await (const chunk of child.stdout) {
      out += decoder.decode(chunk, { stream: true });
      if (resolvedAt === undefined && out.includes("shutdown resolved")) {
        resolvedAt = performance.now();
        clearTimeout(killer);
        killer = setTimeout(() => child.kill("SIGKILL"), EXIT_DEADLINE_MS);
      }
    }
    const status = await child.status;
    const exitedAt = performance.now();
    assert.ok(resolvedAt !== undefined, `the program never shut down:\n${await stderr}`);
    assert.equal(
      status.signal,
      null,
      `still running ${EXIT_DEADLINE_MS} ms after shutdown() resolved (killed):\n${await stderr}`,
    );
    assert.equal(status.code, 0, await stderr);
    assert.ok(exitedAt - resolvedAt < EXIT_DEADLINE_MS);
  } finally {
    clearTimeout(killer);
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await stderr.catch(() => {});
  }
}

Deno.test("a program exits right after shutdown() resolves (memory stores, as in the README)", () =>
  runUntilExit("memory"));

Deno.test("a program exits right after shutdown() resolves (file stores, TCP transport)", () =>
  runUntilExit("file"));
