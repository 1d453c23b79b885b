/**
 * `raftd join-token --data DIR`: print the join token of the cluster whose
 * key is in DIR (or in --cluster-key-file), for `raftd serve --join URL
 * --join-token TOKEN` on a new server.
 *
 * @module
 */

import { writeStdout } from "../src/platform/process.ts";
import { joinTokenFor, loadSecrets } from "../src/server/secrets.ts";
import {
  bool,
  CliError,
  HELP_OPTION,
  helpText,
  type OptionSpec,
  parse,
  str,
  UsageError,
} from "./args.ts";
import { readSecret } from "./serve.ts";

const COMMAND = "raftd join-token";

const OPTIONS: Record<string, OptionSpec> = {
  data: { type: "string", arg: "DIR", help: "a member's data directory (holds cluster.key)" },
  "cluster-key-file": { type: "string", arg: "FILE", help: "the cluster key, instead of DIR's" },
  ...HELP_OPTION,
};

/** Help text of `raftd join-token`. */
const JOIN_TOKEN_HELP: string = helpText(
  `${COMMAND} (--data DIR | --cluster-key-file FILE)`,
  "Print the join token of a cluster: a new server given it (raftd serve --join URL\n" +
    "--join-token TOKEN) gets the cluster key and API token from the member it joins through.\n" +
    "Whoever holds it can join the cluster: keep it as secret as the key.",
  OPTIONS,
);

/**
 * Run `raftd join-token`.
 *
 * @example
 * ```ts ignore
 * import { joinToken } from "./join_token.ts";
 * await joinToken(["--data", "/var/lib/raftd"]);
 * ```
 */
export async function joinToken(argv: string[]): Promise<number> {
  const p = parse(COMMAND, argv, OPTIONS, 0);
  if (bool(p, "help")) {
    writeStdout(JOIN_TOKEN_HELP);
    return 0;
  }
  const data = str(p, "data");
  const keyFile = str(p, "cluster-key-file");
  if ((data === undefined) === (keyFile === undefined)) {
    throw new UsageError(`${COMMAND}: give --data DIR or --cluster-key-file FILE (see --help)`);
  }
  let key: string | undefined;
  if (keyFile !== undefined) {
    key = await readSecret("--cluster-key-file", keyFile, COMMAND);
  } else {
    try {
      key = (await loadSecrets(data!)).clusterKey;
    } catch (e) {
      throw new CliError(`${COMMAND}: ${(e as Error).message}`);
    }
    if (key === undefined) {
      throw new CliError(
        `${COMMAND}: ${data} holds no cluster key (cluster.key): this cluster has none, or ` +
          "it is given with --cluster-key-file",
      );
    }
  }
  writeStdout(`${await joinTokenFor(key!)}\n`);
  return 0;
}
