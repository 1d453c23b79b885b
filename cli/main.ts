/**
 * The `raftd` command: `serve` runs a node; `status`, `peers`, `snapshot`,
 * `transfer-leader` and `kv` talk to a node's HTTP API; `demo` starts a
 * local three-node cluster. Runs on Deno and Bun, from source or compiled.
 *
 * @module
 */

import { runtimeName } from "../src/platform/runtime.ts";
import { args, exit, isMainModule, writeStderr, writeStdout } from "../src/platform/process.ts";
import { CliError, UsageError } from "./args.ts";
import { demo } from "./demo.ts";
import { joinToken } from "./join_token.ts";
import { kv } from "./kv.ts";
import { peers } from "./peers.ts";
import { recover } from "./recover.ts";
import { serve } from "./serve.ts";
import { snapshot } from "./snapshot.ts";
import { status } from "./status.ts";
import { transferLeader } from "./transfer_leader.ts";
import { VERSION } from "./version.ts";

/** Top-level help. */
const MAIN_HELP: string = `Usage: raftd <command> [options]

raftd ${VERSION}: a Raft-replicated key-value store (daemon and admin tool).

Commands:
  serve             run a node (raftd serve --id n1 --data ./data/n1 --bootstrap)
  status            show a node's view of the cluster
  peers             list|add|remove|demote cluster members
  snapshot          compact a node's log now; save|inspect|restore backups
  transfer-leader   hand leadership to another voter
  recover           rewrite a stopped node's configuration after losing quorum
  join-token        print the token new servers join a secure cluster with
  kv                get|put|del|list keys
  demo              start a local 3-node cluster

Admin commands talk to --server URL (or $RAFTD_SERVER, default http://127.0.0.1:8001),
with --token-file FILE when the API needs a token; --json prints JSON.

Options:
  -h, --help      show help (also: raftd <command> --help)
  -V, --version   show the version
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve,
  status,
  peers,
  snapshot,
  recover,
  "join-token": joinToken,
  "transfer-leader": transferLeader,
  kv,
  demo: (argv) => demo(argv, import.meta.url),
};

/**
 * Run the CLI with `argv`; returns the exit code (never throws).
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * const code = await main(["--version"]);
 * ```
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === "--version" || name === "-V" || name === "version") {
      writeStdout(`raftd ${VERSION} (${runtimeName})\n`);
      return 0;
    }
    if (name === "--help" || name === "-h" || name === "help") {
      writeStdout(MAIN_HELP);
      return 0;
    }
    if (name === undefined) {
      writeStderr(MAIN_HELP);
      return 2;
    }
    const command = COMMANDS[name];
    if (!command) {
      throw new UsageError(
        name.startsWith("-")
          ? `raftd: unknown option ${JSON.stringify(name)} (see raftd --help)`
          : `raftd: unknown command ${JSON.stringify(name)} (see raftd --help)`,
      );
    }
    return await command(rest);
  } catch (e) {
    const known = e instanceof UsageError || e instanceof CliError;
    const message = known
      ? e.message
      : `raftd ${name}: ${e instanceof Error ? e.message : String(e)}`;
    const code = known ? e.exitCode : 1;
    // Scripts asking for JSON get their errors as JSON too (on stderr, like the text).
    if (rest.includes("--json")) {
      writeStderr(JSON.stringify({ error: message, exitCode: code }) + "\n");
    } else writeStderr(`error: ${message}\n`);
    return code;
  }
}

if (isMainModule(import.meta)) exit(await main(args()));
