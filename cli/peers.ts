/**
 * `raftd peers list|add|remove|demote`: cluster membership.
 *
 * @module
 */

import { writeStdout } from "../src/platform/process.ts";
import {
  bool,
  CLIENT_OPTIONS,
  HELP_OPTION,
  helpText,
  type OptionSpec,
  parse,
  str,
  UsageError,
} from "./args.ts";
import { clientFor } from "./client.ts";
import { print, table } from "./output.ts";

const COMMAND = "raftd peers";
const BASE = { ...CLIENT_OPTIONS, ...HELP_OPTION };
const ADD_OPTIONS: Record<string, OptionSpec> = {
  id: { type: "string", arg: "ID", help: "the new server's id (or give it as the argument)" },
  raft: { type: "string", arg: "HOST:PORT", help: "its Raft address (required)" },
  http: { type: "string", arg: "URL", help: "its API address, so followers can forward to it" },
  nonvoter: {
    type: "boolean",
    help: "add as a non-voter (default: voter, promoted once caught up)",
  },
  ...BASE,
};

/** Help text of `raftd peers`. */
const PEERS_HELP: string = helpText(
  `${COMMAND} list | add ID --raft HOST:PORT [--http URL] [--nonvoter] | remove ID | demote ID`,
  "Show or change the cluster membership. Changes go to the leader (forwarded by any node).\n" +
    "  list           the servers of the configuration\n" +
    "  add            add a server (a voter starts as staging and is promoted once caught up)\n" +
    "  remove ID      remove a server\n" +
    "  demote ID      turn a voter into a non-voter",
  ADD_OPTIONS,
);

interface PeersBody {
  index: number;
  leader: string | null;
  servers: { id: string; raft: string; http: string | null; suffrage: string }[];
}

/**
 * Run `raftd peers ...`.
 *
 * @example
 * ```ts ignore
 * import { peers } from "./peers.ts";
 * await peers(["list"]);
 * ```
 */
export async function peers(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (sub === undefined) {
    throw new UsageError(
      `${COMMAND}: missing subcommand (list, add, remove or demote; see ${COMMAND} --help)`,
    );
  }
  if (sub === "--help" || sub === "-h" || sub === "help") return help();
  const rest = argv.slice(1);
  const command = `${COMMAND} ${sub}`;
  switch (sub) {
    case "list": {
      const p = parse(command, rest, BASE, 0);
      if (bool(p, "help")) return help();
      const body = await (await clientFor(command, p)).json<PeersBody>("GET", "/v1/peers");
      print(bool(p, "json"), body, () => {
        const rows = [["ID", "SUFFRAGE", "RAFT", "HTTP", ""]];
        for (const s of body.servers) {
          rows.push([
            s.id,
            s.suffrage,
            s.raft,
            s.http ?? "-",
            s.id === body.leader ? "leader" : "",
          ]);
        }
        return `${table(rows)}\n(configuration index ${body.index})`;
      });
      return 0;
    }
    case "add": {
      const p = parse(command, rest, ADD_OPTIONS, 1);
      if (bool(p, "help")) return help();
      const given = p.positionals[0];
      const flag = str(p, "id");
      if (given !== undefined && flag !== undefined && given !== flag) {
        throw new UsageError(
          `${command}: the server ID is given twice (${JSON.stringify(given)} and --id ${
            JSON.stringify(flag)
          }); give it once`,
        );
      }
      const id = given ?? flag;
      const raft = str(p, "raft");
      if (id === undefined) {
        throw new UsageError(`${command}: missing the server ID (see ${COMMAND} --help)`);
      }
      if (raft === undefined) {
        throw new UsageError(`${command}: --raft is required (see ${COMMAND} --help)`);
      }
      const http = str(p, "http");
      const body = await (await clientFor(command, p)).json<
        { index: number; suffrage?: string; unchanged?: boolean }
      >(
        "POST",
        "/v1/peers",
        { id, raft, ...(http !== undefined ? { http } : {}), voter: !bool(p, "nonvoter") },
      );
      print(
        bool(p, "json"),
        body,
        () =>
          body.unchanged
            ? `${id} is already a ${body.suffrage} at ${raft} (nothing to do)`
            : `added ${id} at ${raft} as ${
              body.suffrage ?? (bool(p, "nonvoter") ? "nonvoter" : "voter")
            } (index ${body.index})`,
      );
      return 0;
    }
    case "remove":
    case "demote": {
      const p = parse(command, rest, BASE, 1);
      if (bool(p, "help")) return help();
      const id = p.positionals[0];
      if (id === undefined) {
        throw new UsageError(`${command}: missing the server ID (see ${COMMAND} --help)`);
      }
      const path = `/v1/peers/${encodeURIComponent(id)}${sub === "demote" ? "/demote" : ""}`;
      const body = await (await clientFor(command, p)).json<{ index: number }>(
        sub === "demote" ? "POST" : "DELETE",
        path,
      );
      print(
        bool(p, "json"),
        body,
        () => `${sub === "demote" ? "demoted" : "removed"} ${id} (index ${body.index})`,
      );
      return 0;
    }
    default:
      throw new UsageError(
        `${COMMAND}: unknown subcommand ${
          JSON.stringify(sub)
        }; expected list, add, remove or demote`,
      );
  }
}

function help(): number {
  writeStdout(PEERS_HELP);
  return 0;
}
