/**
 * `raftd kv get|put|del|list`: the key-value store.
 *
 * @module
 */

import { readStdin, writeStdout } from "../src/platform/process.ts";
import {
  bool,
  CLIENT_OPTIONS,
  HELP_OPTION,
  helpText,
  int,
  type OptionSpec,
  parse,
  str,
  UsageError,
} from "./args.ts";
import { clientFor, keyPath } from "./client.ts";
import { print } from "./output.ts";

const COMMAND = "raftd kv";
const OPTIONS: Record<string, OptionSpec> = {
  consistency: {
    type: "string",
    arg: "LEVEL",
    help: "reads: linearizable (default), lease or stale",
  },
  cas: {
    type: "string",
    arg: "INDEX",
    help: "put/del: only if the key's modify index is INDEX (0 = key must not exist)",
  },
  prefix: { type: "string", arg: "P", help: "list: only keys starting with P" },
  limit: { type: "string", arg: "N", help: "list: at most N keys" },
  ...CLIENT_OPTIONS,
  ...HELP_OPTION,
};

/** Help text of `raftd kv`. */
const KV_HELP: string = helpText(
  `${COMMAND} get KEY | put KEY [VALUE] | del KEY | list [--prefix P]  [options]`,
  "Read and write the replicated key-value store through any node.\n" +
    "  get KEY            print the value (with --json: value, modify and create index)\n" +
    "  put KEY [VALUE]    set KEY; without VALUE (or with -) the value is read from stdin\n" +
    "  del KEY            delete KEY\n" +
    "  list [--prefix P]  list keys (those starting with P)",
  OPTIONS,
);

const utf8 = new TextDecoder("utf-8", { fatal: true });

function valueJson(bytes: Uint8Array): { value: string; encoding?: "base64" } {
  try {
    return { value: utf8.decode(bytes) };
  } catch {
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return { value: btoa(bin), encoding: "base64" };
  }
}

function consistencyQuery(command: string, level: string | undefined): string {
  if (level === undefined) return "";
  if (!["linearizable", "lease", "stale"].includes(level)) {
    throw new UsageError(
      `${command}: --consistency must be linearizable, lease or stale, got ${
        JSON.stringify(level)
      }`,
    );
  }
  return `consistency=${level}`;
}

function query(parts: string[]): string {
  const q = parts.filter((x) => x !== "");
  return q.length > 0 ? `?${q.join("&")}` : "";
}

/**
 * Run `raftd kv ...`.
 *
 * @example
 * ```ts ignore
 * import { kv } from "./kv.ts";
 * await kv(["put", "greeting", "hello"]);
 * ```
 */
export async function kv(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (sub === undefined) {
    throw new UsageError(
      `${COMMAND}: missing subcommand (get, put, del or list; see ${COMMAND} --help)`,
    );
  }
  if (sub === "--help" || sub === "-h" || sub === "help") {
    writeStdout(KV_HELP);
    return 0;
  }
  const command = `${COMMAND} ${sub}`;
  const max = sub === "put" ? 2 : 1;
  const p = parse(command, argv.slice(1), OPTIONS, max);
  if (bool(p, "help")) {
    writeStdout(KV_HELP);
    return 0;
  }
  const json = bool(p, "json");
  // A flag the subcommand does not use would be silently ignored: refuse it.
  const uses: Record<string, string[]> = {
    get: ["consistency"],
    put: ["cas"],
    del: ["cas"],
    list: ["prefix", "limit", "consistency"],
  };
  for (const flag of ["consistency", "cas", "prefix", "limit"]) {
    if (str(p, flag) !== undefined && uses[sub] !== undefined && !uses[sub].includes(flag)) {
      throw new UsageError(
        `${command}: --${flag} does not apply to ${sub} (see ${COMMAND} --help)`,
      );
    }
  }
  const cas = int(command, p, "cas");
  const key = p.positionals[0];
  const needKey = () => {
    if (key === undefined || key === "") {
      throw new UsageError(`${command}: missing KEY (see ${COMMAND} --help)`);
    }
    return key;
  };
  const client = await clientFor(command, p);
  switch (sub) {
    case "get": {
      const k = needKey();
      const res = await client.request(
        "GET",
        keyPath(k) + query([consistencyQuery(command, str(p, "consistency"))]),
      );
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (json) {
        print(true, {
          key: k,
          ...valueJson(bytes),
          modifyIndex: Number(res.headers.get("x-raft-index")),
          createIndex: Number(res.headers.get("x-raft-create-index")),
        }, () => "");
      } else {
        writeStdout(new TextDecoder().decode(bytes) + "\n");
      }
      return 0;
    }
    case "put": {
      const k = needKey();
      const given = p.positionals[1];
      const value = given === undefined || given === "-"
        ? await readStdin()
        : new TextEncoder().encode(given);
      const res = await client.request(
        "PUT",
        keyPath(k) + query(cas !== undefined ? [`cas=${cas}`] : []),
        value,
      );
      const body = await res.json() as { index: number };
      print(json, body, () => `OK (index ${body.index})`);
      return 0;
    }
    case "del": {
      const k = needKey();
      const res = await client.request(
        "DELETE",
        keyPath(k) + query(cas !== undefined ? [`cas=${cas}`] : []),
      );
      const body = await res.json() as { index: number };
      print(json, body, () => `deleted (index ${body.index})`);
      return 0;
    }
    case "list": {
      const flag = str(p, "prefix");
      if (key !== undefined && flag !== undefined && key !== flag) {
        throw new UsageError(
          `${command}: the prefix is given twice (${JSON.stringify(key)} and --prefix ${
            JSON.stringify(flag)
          }); give it once`,
        );
      }
      const prefix = flag ?? key ?? "";
      const limit = int(command, p, "limit", { min: 1 });
      const q = query([
        prefix !== "" ? `prefix=${encodeURIComponent(prefix)}` : "",
        limit !== undefined ? `limit=${limit}` : "",
        consistencyQuery(command, str(p, "consistency")),
      ]);
      const body = await client.json<{ keys: string[]; index: number }>("GET", `/v1/kv/${q}`);
      print(json, body, () => body.keys.join("\n"));
      return 0;
    }
    default:
      throw new UsageError(
        `${COMMAND}: unknown subcommand ${JSON.stringify(sub)}; expected get, put, del or list`,
      );
  }
}
