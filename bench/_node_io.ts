/**
 * The few runtime calls of the library benchmark's node process, made
 * without `node:` modules: on Deno, importing one starts the Node.js
 * compatibility layer (`node:process`, `node:readline` and `node:util`
 * together: +8 MB in a program that only waits), which would be counted in
 * the follower RSS the benchmark reports although a library user's program
 * need not load it. Runs on Deno and Bun.
 *
 * @module
 */

interface BunGlobals {
  Bun: { argv: string[]; stdin: { stream(): ReadableStream<Uint8Array> } };
  process: {
    env: Record<string, string | undefined>;
    exit(code: number): never;
    memoryUsage(): { rss: number; heapTotal: number; heapUsed: number; external: number };
  };
}

const onDeno = "Deno" in globalThis;
const bun = globalThis as unknown as BunGlobals;

/**
 * The command-line arguments after the script.
 *
 * @example
 * ```ts
 * import { scriptArgs } from "./_node_io.ts";
 * console.log(scriptArgs().length >= 0); // true
 * ```
 */
export function scriptArgs(): string[] {
  return onDeno ? Deno.args : bun.Bun.argv.slice(2);
}

/**
 * An environment variable, or undefined when it is not set.
 *
 * @example
 * ```ts
 * import { envVar } from "./_node_io.ts";
 * console.log(typeof (envVar("HOME") ?? "")); // string
 * ```
 */
export function envVar(name: string): string | undefined {
  return onDeno ? Deno.env.get(name) : bun.process.env[name];
}

/**
 * Split text into lines without their line ends; a last line with no end
 * is passed on when the text ends.
 *
 * @example
 * ```ts
 * import { splitLines } from "./_node_io.ts";
 * const lines = ReadableStream.from(["a\nb", "c\n"]).pipeThrough(splitLines());
 * console.log(await Array.fromAsync(lines)); // ["a", "bc"]
 * ```
 */
export function splitLines(): TransformStream<string, string> {
  let pending = "";
  return new TransformStream({
    transform(text, lines) {
      pending += text;
      let end;
      while ((end = pending.indexOf("\n")) >= 0) {
        lines.enqueue(pending.slice(0, end));
        pending = pending.slice(end + 1);
      }
    },
    flush(lines) {
      if (pending !== "") lines.enqueue(pending);
    },
  });
}

/**
 * Lines of standard input, without their line ends, as they arrive.
 *
 * @example
 * ```ts ignore
 * import { stdinLines } from "./_node_io.ts";
 * for await (const line of stdinLines()) console.log(line.length);
 * ```
 */
export function stdinLines(): ReadableStream<string> {
  const bytes = onDeno ? Deno.stdin.readable : bun.Bun.stdin.stream();
  return bytes.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines());
}

/**
 * The process's memory, in bytes.
 *
 * @example
 * ```ts
 * import { memoryUsage } from "./_node_io.ts";
 * console.log(memoryUsage().rss > 0); // true
 * ```
 */
export function memoryUsage(): {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
} {
  return onDeno ? Deno.memoryUsage() : bun.process.memoryUsage();
}

/**
 * End the process with `code`.
 *
 * @example
 * ```ts ignore
 * import { exitProcess } from "./_node_io.ts";
 * exitProcess(0);
 * ```
 */
export function exitProcess(code: number): never {
  return onDeno ? Deno.exit(code) : bun.process.exit(code);
}
