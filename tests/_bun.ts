/**
 * Test helpers to run a script under Bun 1.4.4 from npm, the way the
 * README installs it, so the `node:` side of src/platform is exercised.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname;
const BUN = ["-y", "bun@1.4.4"];

/** Whether `npx -y bun@1.4.4` runs on this machine. */
export async function bunRunnable(): Promise<boolean> {
  try {
    const out = await new Deno.Command("npx", {
      args: [...BUN, "--version"],
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(60_000),
    }).output();
    return out.success && /^\d+\.\d+/.test(new TextDecoder().decode(out.stdout).trim());
  } catch {
    return false;
  }
}

/** What a Bun run printed. */
export interface BunRun {
  success: boolean;
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `script` with `args` under Bun from the repository root (2 minutes at most). */
export async function runUnderBun(script: string, args: string[] = []): Promise<BunRun> {
  const out = await new Deno.Command("npx", {
    args: [...BUN, "run", script, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    success: out.success,
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}
