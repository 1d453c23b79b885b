/**
 * How benchmarks start Bun: from npm, as the README installs it.
 *
 * @module
 */

let cached: string[] | undefined;

/** The command prefix that runs Bun 1.4.4 (resolved once to the binary). */
export async function bunCommand(): Promise<string[]> {
  if (cached) return cached;
  const out = await new Deno.Command("npx", {
    args: ["-y", "bun@1.4.4", "-e", "console.log(process.execPath)"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const path = new TextDecoder().decode(out.stdout).trim();
  cached = out.success && path ? [path] : ["npx", "-y", "bun@1.4.4"];
  return cached;
}
