/**
 * `raftd recover`: rewrite a stopped node's configuration after the cluster
 * lost its quorum for good.
 *
 * @module
 */

import { readTextFile, writeStdout } from "../src/platform/process.ts";
import { ConfigurationError } from "../src/errors.ts";
import { DataDirInUseError } from "../src/server/data_dir_lock.ts";
import { IdentityError } from "../src/server/node_identity.ts";
import { parsePeers, recoverDataDir, RecoveryError } from "../src/server/recover.ts";
import { checkServerId } from "../src/server/validate.ts";
import {
  bool,
  CLIENT_OPTIONS,
  CliError,
  HELP_OPTION,
  helpText,
  type OptionSpec,
  parse,
  str,
  UsageError,
} from "./args.ts";
import { print, table } from "./output.ts";

const COMMAND = "raftd recover";
const OPTIONS: Record<string, OptionSpec> = {
  data: { type: "string", arg: "DIR", help: "data directory of the stopped node (required)" },
  peers: {
    type: "string",
    arg: "FILE",
    help: 'JSON array of {"id", "raft", "http", "suffrage"}: the new configuration (required)',
  },
  id: {
    type: "string",
    arg: "ID",
    help: "the node's server id, when DIR does not record it (older directories)",
  },
  json: CLIENT_OPTIONS.json,
  ...HELP_OPTION,
};

/** Help text of `raftd recover`. */
const RECOVER_HELP: string = helpText(
  `${COMMAND} --data DIR --peers FILE [--json]`,
  "Disaster recovery after losing quorum for good (hashicorp/raft's peers.json). On a\n" +
    "STOPPED node: its state (snapshot and every stored entry) becomes a snapshot whose\n" +
    "configuration is the servers in FILE, and its log is dropped. Run it with the same FILE\n" +
    "on every server listed, then start them with raftd serve (no --bootstrap or --join).\n" +
    'FILE: [{"id": "n1", "raft": "10.0.0.1:7001", "http": "http://10.0.0.1:8001",\n' +
    '        "suffrage": "voter"}]   (suffrage: voter, the default, or nonvoter)',
  OPTIONS,
);

/**
 * Run `raftd recover`.
 *
 * @example
 * ```ts ignore
 * import { recover } from "./recover.ts";
 * await recover(["--data", "/var/lib/raftd", "--peers", "peers.json"]);
 * ```
 */
export async function recover(argv: string[]): Promise<number> {
  const p = parse(COMMAND, argv, OPTIONS, 0);
  if (bool(p, "help")) {
    writeStdout(RECOVER_HELP);
    return 0;
  }
  const dataDir = str(p, "data");
  const peersFile = str(p, "peers");
  if (dataDir === undefined || peersFile === undefined) {
    throw new UsageError(`${COMMAND}: --data and --peers are required (see ${COMMAND} --help)`);
  }
  const idFlag = str(p, "id");
  if (idFlag !== undefined) {
    try {
      checkServerId(idFlag, "--id");
    } catch (e) {
      throw new UsageError(`${COMMAND}: ${(e as Error).message}`);
    }
  }
  let text: string;
  try {
    text = await readTextFile(peersFile);
  } catch (e) {
    throw new CliError(
      `${COMMAND}: cannot read the peers file ${peersFile}: ${(e as Error).message}`,
    );
  }
  let result;
  try {
    const peers = parsePeers(text);
    result = await recoverDataDir({ dataDir, peers, id: idFlag });
  } catch (e) {
    // These are all found before anything is written.
    const before = e instanceof RecoveryError || e instanceof DataDirInUseError ||
      e instanceof IdentityError || e instanceof ConfigurationError;
    throw new CliError(
      `${COMMAND}: ${(e as Error).message}${before ? " (nothing was changed)" : ""}`,
    );
  }
  const r = result;
  print(bool(p, "json"), r, () => {
    const rows = [["ID", "SUFFRAGE", "RAFT"]];
    for (const s of r.configuration.servers) rows.push([s.id, s.suffrage, s.address]);
    return [
      `recovered ${dataDir} (server ${r.id}, cluster ${r.clusterId ?? "without an id"}):`,
      `it held entries up to index ${r.lastIndex} (term ${r.term}); its configuration is now:`,
      table(rows).split("\n").map((l) => `  ${l}`.trimEnd()).join("\n"),
      "Run this on every server listed, then start them with raftd serve (no --bootstrap).",
    ].join("\n");
  });
  return 0;
}
