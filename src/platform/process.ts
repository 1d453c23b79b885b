/**
 * The process itself: arguments, environment, exit, signals, standard
 * streams, temporary directories, small text files and child processes.
 * Deno's native APIs on Deno; `node:` modules on Bun and Node.js.
 *
 * @module
 */

import * as childProcess from "node:child_process";
import { realpathSync } from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import nodeProcess from "node:process";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { runtimeName } from "./runtime.ts";

/** Bun and Node.js: the `node:` modules; Deno: its native APIs. */
const nodeApis = runtimeName !== "deno";

/**
 * Signals raftd reacts to.
 *
 * @example
 * ```ts
 * import type { ProcessSignal } from "./process.ts";
 * const stop: ProcessSignal = "SIGTERM";
 * ```
 */
export type ProcessSignal = "SIGINT" | "SIGTERM" | "SIGHUP" | "SIGKILL";

/**
 * Command-line arguments after the program (and script) name.
 *
 * @example
 * ```ts
 * import { args } from "./process.ts";
 * console.log(args().length >= 0); // true
 * ```
 */
export function args(): string[] {
  return nodeApis ? nodeProcess.argv.slice(2) : [...Deno.args];
}

/**
 * An environment variable, or undefined when unset.
 *
 * @example
 * ```ts
 * import { env } from "./process.ts";
 * console.log(typeof (env("HOME") ?? ""));
 * ```
 */
export function env(name: string): string | undefined {
  return nodeApis ? nodeProcess.env[name] : Deno.env.get(name);
}

/**
 * End the process with `code`.
 *
 * @example
 * ```ts ignore
 * import { exit } from "./process.ts";
 * exit(0);
 * ```
 */
export function exit(code: number): never {
  if (nodeApis) nodeProcess.exit(code);
  return Deno.exit(code);
}

/**
 * Whether the module whose `import.meta` this is was the program's entry
 * point (`deno run x.ts`, `bun x.ts`, `node x.js`). Deno and Bun say so in
 * `import.meta.main`; Node.js before 24 does not, so the module's path is
 * compared with the script Node.js was started with.
 *
 * @example
 * ```ts
 * import { isMainModule } from "./process.ts";
 * if (isMainModule(import.meta)) console.log("run directly");
 * ```
 */
export function isMainModule(meta: ImportMeta): boolean {
  const main = (meta as { main?: unknown }).main;
  if (typeof main === "boolean") return main;
  const script = nodeProcess.argv[1];
  if (script === undefined || !meta.url.startsWith("file:")) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(meta.url));
  } catch {
    return false;
  }
}

/**
 * Path of the running executable (the runtime, or the compiled program).
 *
 * @example
 * ```ts
 * import { execPath } from "./process.ts";
 * console.log(execPath().length > 0); // true
 * ```
 */
export function execPath(): string {
  return nodeApis ? nodeProcess.execPath : Deno.execPath();
}

/**
 * This process's id.
 *
 * @example
 * ```ts
 * import { pid } from "./process.ts";
 * console.log(pid() > 0); // true
 * ```
 */
export function pid(): number {
  return nodeApis ? nodeProcess.pid : Deno.pid;
}

/**
 * Call `handler` when one of `signals` arrives (instead of the default
 * exit). Returns a function that removes the handler.
 *
 * @example
 * ```ts
 * import { onSignals } from "./process.ts";
 * const off = onSignals(["SIGINT", "SIGTERM"], (s) => console.log("got", s));
 * off();
 * ```
 */
export function onSignals(
  signals: Exclude<ProcessSignal, "SIGKILL">[],
  handler: (signal: string) => void,
): () => void {
  const removers = signals.map((signal) => {
    const fn = () => handler(signal);
    if (nodeApis) {
      nodeProcess.on(signal, fn);
      return () => nodeProcess.off(signal, fn);
    }
    Deno.addSignalListener(signal, fn);
    return () => Deno.removeSignalListener(signal, fn);
  });
  return () => removers.forEach((r) => r());
}

const encoder = new TextEncoder();

function writeAllSync(fd: 1 | 2, text: string): void {
  const bytes = encoder.encode(text);
  const stream = fd === 1 ? Deno.stdout : Deno.stderr;
  let off = 0;
  while (off < bytes.length) off += stream.writeSync(bytes.subarray(off));
}

/**
 * Write `text` to standard output (no newline added).
 *
 * @example
 * ```ts
 * import { writeStdout } from "./process.ts";
 * writeStdout("hello\n");
 * ```
 */
export function writeStdout(text: string): void {
  if (nodeApis) nodeProcess.stdout.write(text);
  else writeAllSync(1, text);
}

/**
 * Write `text` to standard error (no newline added).
 *
 * @example
 * ```ts
 * import { writeStderr } from "./process.ts";
 * writeStderr("careful\n");
 * ```
 */
export function writeStderr(text: string): void {
  if (nodeApis) nodeProcess.stderr.write(text);
  else writeAllSync(2, text);
}

/**
 * Create a new temporary directory and return its path.
 *
 * @example
 * ```ts
 * import { makeTempDir, removeDir } from "./process.ts";
 * const dir = await makeTempDir("raftd-");
 * await removeDir(dir);
 * ```
 */
export function makeTempDir(prefix: string): Promise<string> {
  return nodeApis ? fsp.mkdtemp(path.join(os.tmpdir(), prefix)) : Deno.makeTempDir({ prefix });
}

/**
 * Remove a directory and everything in it; no error when it does not exist.
 *
 * @example
 * ```ts
 * import { removeDir } from "./process.ts";
 * await removeDir("/tmp/raftd-does-not-exist");
 * ```
 */
export async function removeDir(dir: string): Promise<void> {
  if (nodeApis) return await fsp.rm(dir, { recursive: true, force: true });
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * Create a directory and its parents if missing, private to the owner
 * (mode 0700, before the umask) when created.
 *
 * @example
 * ```ts
 * import { ensureDir, makeTempDir, removeDir } from "./process.ts";
 * const dir = await makeTempDir("raftd-");
 * await ensureDir(`${dir}/a/b`);
 * await removeDir(dir);
 * ```
 */
export async function ensureDir(dir: string): Promise<void> {
  if (nodeApis) await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  else await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * The permission bits of `file` (e.g. `0o600`), or undefined where the
 * platform has none (Windows).
 *
 * @example
 * ```ts
 * import { fileMode, makeTempDir, removeDir } from "./process.ts";
 * const dir = await makeTempDir("raftd-");
 * console.log(((await fileMode(dir)) ?? 0o700).toString(8)); // "700"
 * await removeDir(dir);
 * ```
 */
export async function fileMode(file: string): Promise<number | undefined> {
  if (isWindows()) return undefined;
  const mode = nodeApis ? (await fsp.stat(file)).mode : (await Deno.stat(file)).mode;
  return mode === null ? undefined : mode & 0o777;
}

/**
 * Set the permission bits of `file` (a no-op on Windows).
 *
 * @example
 * ```ts
 * import { changeMode, fileMode, makeTempDir, removeDir } from "./process.ts";
 * const dir = await makeTempDir("raftd-");
 * await changeMode(dir, 0o700);
 * console.log(((await fileMode(dir)) ?? 0o700).toString(8)); // "700"
 * await removeDir(dir);
 * ```
 */
export async function changeMode(file: string, mode: number): Promise<void> {
  if (isWindows()) return;
  if (nodeApis) await fsp.chmod(file, mode);
  else await Deno.chmod(file, mode);
}

/**
 * A secret file others may read or write: {@linkcode readSecretFile} refuses it.
 *
 * @example
 * ```ts
 * import { ExposedSecretError } from "./process.ts";
 * const e = new ExposedSecretError("--api-token-file /t is accessible by others");
 * console.log(e instanceof Error); // true
 * ```
 */
export class ExposedSecretError extends Error {
  override name = "ExposedSecretError";
}

/**
 * Read a secret (a key, a token) from `file`, refusing a file that others
 * may read or write, as ssh does with private keys: the message names the
 * file, its mode and the command that fixes it. `flag` names where the path
 * came from, e.g. `--cluster-key-file`.
 *
 * @example
 * ```ts
 * import { makeTempDir, readSecretFile, removeDir, writePrivateFile } from "./process.ts";
 * const dir = await makeTempDir("raftd-");
 * await writePrivateFile(`${dir}/token`, "s3cret\n");
 * console.log(await readSecretFile(`${dir}/token`, "--api-token-file")); // "s3cret\n"
 * await removeDir(dir);
 * ```
 */
export async function readSecretFile(file: string, flag: string): Promise<string> {
  const mode = await fileMode(file);
  if (mode !== undefined && (mode & 0o077) !== 0) {
    throw new ExposedSecretError(
      `${flag} ${file} is accessible by others (mode ${
        mode.toString(8).padStart(4, "0")
      }): a secret must be private to its owner; run: chmod 600 ${file}`,
    );
  }
  return await readTextFile(file);
}

/**
 * Write a small UTF-8 text file only its owner may read (mode 0600), replacing it.
 *
 * @example
 * ```ts
 * import { makeTempDir, removeDir, writePrivateFile } from "./process.ts";
 * const dir = await makeTempDir("raftd-");
 * await writePrivateFile(`${dir}/cluster.key`, "c2VjcmV0\n");
 * await removeDir(dir);
 * ```
 */
export async function writePrivateFile(file: string, text: string): Promise<void> {
  if (nodeApis) {
    await fsp.writeFile(file, text, { encoding: "utf8", mode: 0o600 });
  } else {
    await Deno.writeTextFile(file, text, { mode: 0o600 });
  }
  // An existing file keeps its mode on rewrite: make sure.
  await changeMode(file, 0o600);
}

function isWindows(): boolean {
  return nodeApis ? nodeProcess.platform === "win32" : Deno.build.os === "windows";
}

/**
 * Read a small UTF-8 text file (a token, a key).
 *
 * @example
 * ```ts ignore
 * import { readTextFile } from "./process.ts";
 * const token = (await readTextFile("/etc/raftd/token")).trim();
 * ```
 */
export function readTextFile(file: string): Promise<string> {
  return nodeApis ? fsp.readFile(file, "utf8") : Deno.readTextFile(file);
}

/**
 * Write a small UTF-8 text file, replacing it.
 *
 * @example
 * ```ts ignore
 * import { writeTextFile } from "./process.ts";
 * await writeTextFile("/tmp/raftd-token", "secret\n");
 * ```
 */
export function writeTextFile(file: string, text: string): Promise<void> {
  return nodeApis ? fsp.writeFile(file, text, "utf8") : Deno.writeTextFile(file, text);
}

/**
 * The V8 flags raftd's own processes run with on Deno (`deno task raftd`,
 * `deno task demo`, the nodes `raftd demo` starts, `deno compile`): young
 * generation semi-spaces of at most 1 MB. V8 otherwise grows them under load,
 * which cost 5–15 MB of resident memory per node in the benchmarks
 * (`bench/README.md`) and bought no throughput there. Bun's engine has no
 * such setting.
 *
 * @example
 * ```ts
 * import { RAFTD_V8_FLAGS } from "./process.ts";
 * console.log(`deno run -A --v8-flags=${RAFTD_V8_FLAGS} cli/main.ts serve`);
 * ```
 */
export const RAFTD_V8_FLAGS = "--max-semi-space-size=1";

/**
 * The command that runs the program whose entry module is `mainModuleUrl`
 * again: the executable itself when compiled (`bun build --compile`,
 * `deno compile`), otherwise the runtime with the script.
 *
 * @example
 * ```ts
 * import { selfCommand } from "./process.ts";
 * const { command, args } = selfCommand(import.meta.url);
 * console.log(command.length > 0, Array.isArray(args)); // true true
 * ```
 */
export function selfCommand(mainModuleUrl: string): { command: string; args: string[] } {
  if (nodeApis) {
    // Compiled Bun executables run their modules from the embedded "$bunfs".
    if (mainModuleUrl.includes("$bunfs") || mainModuleUrl.includes("~BUN")) {
      return { command: nodeProcess.execPath, args: [] };
    }
    return { command: nodeProcess.execPath, args: [fileURLToPath(mainModuleUrl)] };
  }
  if (Deno.build.standalone) return { command: Deno.execPath(), args: [] };
  const run = ["run", "-A", `--v8-flags=${RAFTD_V8_FLAGS}`];
  if (!mainModuleUrl.startsWith("file:")) {
    // Run from a registry (`deno run -A jsr:@raftd/raftd/cli demo`): run the same module again.
    return { command: Deno.execPath(), args: [...run, mainModuleUrl] };
  }
  const script = fileURLToPath(mainModuleUrl);
  const config = findConfig(path.dirname(script));
  return {
    command: Deno.execPath(),
    args: [...run, ...(config ? ["--config", config] : []), script],
  };
}

function findConfig(dir: string): string | undefined {
  for (let d = dir;; d = path.dirname(d)) {
    for (const name of ["deno.json", "deno.jsonc"]) {
      try {
        if (Deno.statSync(path.join(d, name)).isFile) return path.join(d, name);
      } catch {
        // not here; look further up
      }
    }
    if (path.dirname(d) === d) return undefined;
  }
}

/**
 * What to do with a child's standard stream.
 *
 * @example
 * ```ts
 * import type { StdioMode } from "./process.ts";
 * const quiet: StdioMode = "null";
 * ```
 */
export type StdioMode = "inherit" | "piped" | "null";

/**
 * Options of {@linkcode spawn}.
 *
 * @example
 * ```ts
 * import type { SpawnOptions } from "./process.ts";
 * const options: SpawnOptions = { env: { NO_COLOR: "1" }, stdout: "piped", stderr: "inherit" };
 * ```
 */
export interface SpawnOptions {
  /** Extra environment variables (added to this process's environment). */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
  /** Standard input; default "null". */
  stdin?: "inherit" | "null";
  /** Standard output; default "inherit". */
  stdout?: StdioMode;
  /** Standard error; default "inherit". */
  stderr?: StdioMode;
}

/**
 * How a child ended.
 *
 * @example
 * ```ts
 * import type { ChildStatus } from "./process.ts";
 * const ok: ChildStatus = { success: true, code: 0, signal: null };
 * ```
 */
export interface ChildStatus {
  /** True when it exited with code 0. */
  success: boolean;
  /** Exit code (null when killed by a signal on Bun). */
  code: number | null;
  /** Signal that killed it, if any. */
  signal: string | null;
}

/**
 * A running child process.
 *
 * @example
 * ```ts
 * import { spawn, type ChildProcess } from "./process.ts";
 * const child: ChildProcess = spawn("true", [], { stdout: "null" });
 * await child.status;
 * ```
 */
export interface ChildProcess {
  /** Its process id. */
  readonly pid: number;
  /** Its standard output when spawned with `stdout: "piped"`. */
  readonly stdout: ReadableStream<Uint8Array> | null;
  /** Its standard error when spawned with `stderr: "piped"`. */
  readonly stderr: ReadableStream<Uint8Array> | null;
  /** Resolves when it ends. */
  readonly status: Promise<ChildStatus>;
  /** Send a signal (default SIGTERM); no error when it already ended. */
  kill(signal?: ProcessSignal): void;
}

/**
 * Start a child process.
 *
 * @example
 * ```ts
 * import { spawn } from "./process.ts";
 * const child = spawn("true", [], { stdout: "null" });
 * console.log((await child.status).success); // true
 * ```
 */
export function spawn(command: string, argv: string[], options: SpawnOptions = {}): ChildProcess {
  if (nodeApis) return spawnNode(command, argv, options);
  const child = new Deno.Command(command, {
    args: argv,
    env: options.env,
    cwd: options.cwd,
    stdin: options.stdin ?? "null",
    stdout: options.stdout ?? "inherit",
    stderr: options.stderr ?? "inherit",
  }).spawn();
  return {
    pid: child.pid,
    stdout: options.stdout === "piped" ? child.stdout : null,
    stderr: options.stderr === "piped" ? child.stderr : null,
    status: child.status.then((s) => ({ success: s.success, code: s.code, signal: s.signal })),
    kill(signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // already ended
      }
    },
  };
}

function spawnNode(command: string, argv: string[], options: SpawnOptions): ChildProcess {
  const mode = (m: StdioMode | undefined) =>
    m === "piped" ? "pipe" : m === "null" ? "ignore" : "inherit";
  const child = childProcess.spawn(command, argv, {
    cwd: options.cwd,
    env: { ...nodeProcess.env, ...options.env },
    stdio: [
      options.stdin === "inherit" ? "inherit" : "ignore",
      mode(options.stdout),
      mode(options.stderr),
    ],
  });
  const toWeb = (s: Readable | null) =>
    s ? Readable.toWeb(s) as unknown as ReadableStream<Uint8Array> : null;
  const status = new Promise<ChildStatus>((resolve) => {
    child.once("error", () => resolve({ success: false, code: 127, signal: null }));
    child.once("exit", (code, signal) => resolve({ success: code === 0, code, signal }));
  });
  return {
    pid: child.pid ?? -1,
    stdout: toWeb(child.stdout),
    stderr: toWeb(child.stderr),
    status,
    kill(signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch {
        // already ended
      }
    },
  };
}

/**
 * Read all of standard input.
 *
 * @example
 * ```ts ignore
 * import { readStdin } from "./process.ts";
 * const bytes = await readStdin();
 * ```
 */
export async function readStdin(): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  if (nodeApis) {
    for await (const c of nodeProcess.stdin) chunks.push(c as Uint8Array);
  } else {
    for await (const c of Deno.stdin.readable) chunks.push(c);
  }
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
