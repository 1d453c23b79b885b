/**
 * The command line of every benchmark: `--help` prints a usage text, and an
 * unknown flag or a malformed value is one line on stderr and exit code 2
 * (not a parser's stack trace). Built on the CLI's own parser; runs on Deno
 * and Bun (the library benchmark's nodes may run on either).
 *
 * @module
 */

import process from "node:process";
import { HELP_OPTION, helpText, type OptionSpec, parse, UsageError } from "../cli/args.ts";

/**
 * One flag of a benchmark.
 *
 * @example
 * ```ts
 * import type { BenchOption } from "./_args.ts";
 * const n: BenchOption = { type: "integer", default: 20000, help: "operations per run" };
 * ```
 */
export interface BenchOption {
  /**
   * `integer`: a positive integer, `number`: a positive number; both are
   * given as strings and returned as numbers.
   */
  type: "string" | "boolean" | "integer" | "number";
  /** Shown in `--help`. */
  help: string;
  /** Placeholder of the value in `--help`. */
  arg?: string;
  /** The value when the flag is absent. */
  default?: string | number;
  /** The only values a string flag accepts. */
  choices?: readonly string[];
}

/**
 * `--dir`: where a disk benchmark writes (the temp dir by default).
 *
 * @example
 * ```ts ignore
 * import { benchArgs, DIR_OPTION } from "./_args.ts";
 * const { dir } = benchArgs("deno task bench:log", "The disk.", { dir: DIR_OPTION });
 * ```
 */
export const DIR_OPTION = {
  type: "string",
  arg: "DIR",
  help: "directory on the disk to test (default: the temp dir)",
} as const satisfies BenchOption;

/**
 * The parsed flags: booleans, numbers for `integer` flags, strings, and
 * `undefined` for an absent flag without a default.
 *
 * @example
 * ```ts
 * import type { BenchValues } from "./_args.ts";
 * const v: BenchValues<{ n: { type: "integer"; help: string; default: number } }> = { n: 5 };
 * ```
 */
export type BenchValues<O extends Record<string, BenchOption>> = {
  [K in keyof O]: O[K] extends { type: "boolean" } ? boolean
    : O[K] extends { type: "integer" | "number"; default: number } ? number
    : O[K] extends { type: "integer" | "number" } ? number | undefined
    : O[K] extends { default: string } ? string
    : string | undefined;
};

/**
 * Parse a benchmark's flags (`--` separators are ignored, as `deno task`
 * passes them on). `--help` prints the usage and exits 0; a mistake prints
 * one line saying what was expected and what was given, and exits 2.
 *
 * @example
 * ```ts ignore
 * import { benchArgs } from "./_args.ts";
 * const values = benchArgs("deno task bench:log", "The log store alone.", {
 *   seconds: { type: "integer", default: 2, help: "seconds per batch size" },
 * });
 * console.log(values.seconds); // 2
 * ```
 */
export function benchArgs<O extends Record<string, BenchOption>>(
  command: string,
  description: string,
  options: O,
  argv: readonly string[] = process.argv.slice(2),
): BenchValues<O> {
  const specs: Record<string, OptionSpec> = {};
  for (const [name, o] of Object.entries(options)) {
    const shown = o.default !== undefined ? ` (default ${o.default})` : "";
    const choices = o.choices ? ` (${o.choices.join("|")})` : "";
    specs[name] = {
      type: o.type === "boolean" ? "boolean" : "string",
      help: `${o.help}${choices}${shown}`,
      arg: o.arg ?? (o.type === "integer" || o.type === "number" ? "N" : undefined),
    };
  }
  try {
    const parsed = parse(command, argv.filter((a) => a !== "--"), { ...specs, ...HELP_OPTION }, 0);
    if (parsed.values.help === true) {
      console.log(helpText(`${command} [options]`, description, { ...specs, ...HELP_OPTION }));
      process.exit(0);
    }
    const values: Record<string, string | number | boolean | undefined> = {};
    for (const [name, o] of Object.entries(options)) {
      values[name] = flagValue(command, name, o, parsed.values[name]);
    }
    return values as BenchValues<O>;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`error: ${e.message}`);
    process.exit(e.exitCode);
  }
}

function flagValue(
  command: string,
  name: string,
  option: BenchOption,
  given: unknown,
): string | number | boolean | undefined {
  if (option.type === "boolean") return given === true;
  if (given === undefined) return option.default;
  const text = String(given);
  if (option.type === "integer") {
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0) {
      throw new UsageError(
        `${command}: --${name} must be a positive integer, got ${
          JSON.stringify(text)
        } (see ${command} --help)`,
      );
    }
    return n;
  }
  if (option.type === "number") {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n) || n <= 0) {
      throw new UsageError(
        `${command}: --${name} must be a positive number, got ${
          JSON.stringify(text)
        } (see ${command} --help)`,
      );
    }
    return n;
  }
  if (option.choices && !option.choices.includes(text)) {
    throw new UsageError(
      `${command}: --${name} must be ${option.choices.join(", ")}, got ${
        JSON.stringify(text)
      } (see ${command} --help)`,
    );
  }
  return text;
}
