/**
 * Argument parsing for the raftd CLI on top of `node:util` parseArgs
 * (strict), with one-line errors and the flags every command shares.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { env } from "../src/platform/process.ts";

/**
 * A command-line mistake: printed as one line, exit code 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./args.ts";
 * console.log(new UsageError("raftd kv: missing KEY").exitCode); // 2
 * ```
 */
export class UsageError extends Error {
  /** Exit code for usage errors. */
  readonly exitCode = 2;
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * A failure while running a command (server error, unreachable node):
 * printed as one line, exit code 1.
 *
 * @example
 * ```ts
 * import { CliError } from "./args.ts";
 * console.log(new CliError("no leader").exitCode); // 1
 * ```
 */
export class CliError extends Error {
  /** Exit code. */
  readonly exitCode: number;
  /** Creates the error. */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/**
 * One option as parseArgs wants it, plus help text.
 *
 * @example
 * ```ts
 * import type { OptionSpec } from "./args.ts";
 * const id: OptionSpec = { type: "string", arg: "ID", help: "server id" };
 * ```
 */
export interface OptionSpec {
  /** string or boolean. */
  type: "string" | "boolean";
  /** One-letter alias. */
  short?: string;
  /** Allow the flag more than once. */
  multiple?: boolean;
  /** Shown in --help; `ARG` names the value. */
  help: string;
  /** Placeholder of the value in --help. */
  arg?: string;
}

/**
 * Options of every command talking to a node's API.
 *
 * @example
 * ```ts
 * import { CLIENT_OPTIONS, HELP_OPTION } from "./args.ts";
 * const options = { ...CLIENT_OPTIONS, ...HELP_OPTION };
 * console.log(Object.keys(options).length); // 7
 * ```
 */
export const CLIENT_OPTIONS: Record<string, OptionSpec> = {
  server: {
    type: "string",
    arg: "URL",
    help: "node API to talk to (default $RAFTD_SERVER or http://127.0.0.1:8001)",
  },
  "token-file": {
    type: "string",
    arg: "FILE",
    help: "file holding the API bearer token (default $RAFTD_TOKEN_FILE)",
  },
  "ca-file": {
    type: "string",
    arg: "FILE",
    help: "PEM CA the API's HTTPS certificate chains to (default $RAFTD_CA_FILE)",
  },
  "cert-file": {
    type: "string",
    arg: "FILE",
    help: "PEM client certificate, for APIs that require one (default $RAFTD_CERT_FILE)",
  },
  "key-file": {
    type: "string",
    arg: "FILE",
    help: "its PEM private key (default $RAFTD_KEY_FILE)",
  },
  json: { type: "boolean", help: "print JSON instead of human-readable text" },
};

/**
 * --help, present on every command.
 *
 * @example
 * ```ts
 * import { HELP_OPTION, parse } from "./args.ts";
 * console.log(parse("raftd x", ["-h"], HELP_OPTION, 0).values.help); // true
 * ```
 */
export const HELP_OPTION: Record<string, OptionSpec> = {
  help: { type: "boolean", short: "h", help: "show this help" },
};

/**
 * What a command's parse returns.
 *
 * @example
 * ```ts
 * import type { Parsed } from "./args.ts";
 * const p: Parsed = { values: { json: true }, positionals: ["KEY"] };
 * ```
 */
export interface Parsed {
  /** Flag values by long name. */
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  /** Positional arguments. */
  positionals: string[];
}

/**
 * Parse `argv` strictly against `options`. Unknown flags, missing values and
 * unexpected positionals become a {@linkcode UsageError} naming the command.
 *
 * @example
 * ```ts
 * import { parse, HELP_OPTION } from "./args.ts";
 * const p = parse("raftd x", ["--help"], HELP_OPTION, 0);
 * console.log(p.values.help); // true
 * ```
 */
export function parse(
  command: string,
  argv: string[],
  options: Record<string, OptionSpec>,
  maxPositionals: number,
): Parsed {
  const spec: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> =
    {};
  for (const [name, o] of Object.entries(options)) {
    spec[name] = {
      type: o.type,
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: spec, strict: true, allowPositionals: true });
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0]
      .replace(/\. To specify a positional argument.*$/, "")
      .replace(/^Option '(-\w, )?(--[\w-]+) <value>' argument missing$/, "option $2 needs a value");
    throw new UsageError(`${command}: ${msg} (see ${command} --help)`);
  }
  if (!parsed.values.help && parsed.positionals.length > maxPositionals) {
    throw new UsageError(
      `${command}: unexpected argument ${
        JSON.stringify(parsed.positionals[maxPositionals])
      } (see ${command} --help)`,
    );
  }
  return { values: parsed.values as Parsed["values"], positionals: parsed.positionals };
}

/**
 * Render a help text: usage line, description, then the options.
 *
 * @example
 * ```ts
 * import { helpText, HELP_OPTION } from "./args.ts";
 * console.log(helpText("raftd x", "Does x.", HELP_OPTION));
 * ```
 */
export function helpText(
  usage: string,
  description: string,
  options: Record<string, OptionSpec>,
): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : "    "}--${name}${
      o.type === "string" ? ` ${o.arg ?? "VALUE"}` : ""
    }`;
    return [flag, o.help] as const;
  });
  const width = Math.max(...rows.map(([f]) => f.length));
  return `Usage: ${usage}\n\n${description}\n\nOptions:\n${
    rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`).join("\n")
  }\n`;
}

/**
 * A string flag's value (undefined when absent).
 *
 * @example
 * ```ts
 * import { str } from "./args.ts";
 * console.log(str({ values: { id: "n1" }, positionals: [] }, "id")); // "n1"
 * ```
 */
export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * A boolean flag's value.
 *
 * @example
 * ```ts
 * import { bool } from "./args.ts";
 * console.log(bool({ values: { json: true }, positionals: [] }, "json")); // true
 * ```
 */
export function bool(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

/**
 * A non-negative integer flag (UsageError when not an integer in range).
 *
 * @example
 * ```ts
 * import { int } from "./args.ts";
 * console.log(int("raftd x", { values: { n: "5" }, positionals: [] }, "n", { min: 1 })); // 5
 * ```
 */
export function int(
  command: string,
  p: Parsed,
  name: string,
  range: { min?: number; max?: number } = {},
): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  const min = range.min ?? 0;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (!/^\d+$/.test(v) || n < min || n > max) {
    throw new UsageError(
      `${command}: --${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/**
 * The API base URL: --server, else $RAFTD_SERVER, else http://127.0.0.1:8001.
 * Accepts `host:port` too.
 *
 * @example
 * ```ts
 * import { serverUrl } from "./args.ts";
 * console.log(serverUrl("raftd status", { values: { server: "127.0.0.1:8002" }, positionals: [] }));
 * ```
 */
export function serverUrl(command: string, p: Parsed): string {
  const raw = str(p, "server") ?? env("RAFTD_SERVER") ?? "http://127.0.0.1:8001";
  const hasHttp = /^https?:\/\//i.test(raw);
  // Another scheme (ftp://, unix://) would otherwise be read as a host name.
  const otherScheme = !hasHttp && /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  try {
    const u = new URL(hasHttp ? raw : `http://${raw}`);
    const bare = u.hostname !== "" && u.username === "" && u.password === "" &&
      (u.pathname === "/" || u.pathname === "") && u.search === "" && u.hash === "";
    if (!otherScheme && bare) return `${u.protocol}//${u.host}`;
  } catch {
    // fall through to the error
  }
  throw new UsageError(
    `${command}: --server must be a URL like http://127.0.0.1:8001 (no path), got ${
      JSON.stringify(raw)
    }`,
  );
}
