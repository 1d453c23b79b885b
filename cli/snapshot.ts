/**
 * `raftd snapshot`: take a snapshot (log compaction) on a node now.
 *
 * @module
 */

import { writeStdout } from "../src/platform/process.ts";
import { bool, CLIENT_OPTIONS, HELP_OPTION, helpText, parse } from "./args.ts";
import { clientFor } from "./client.ts";
import { print } from "./output.ts";

const COMMAND = "raftd snapshot";
const OPTIONS = { ...CLIENT_OPTIONS, ...HELP_OPTION };

/** Help text of `raftd snapshot`. */
const SNAPSHOT_HELP: string = helpText(
  `${COMMAND} [--server URL] [--json]`,
  "Take a snapshot on the node now and compact its log (the node given by --server).",
  OPTIONS,
);

/**
 * Run `raftd snapshot`.
 *
 * @example
 * ```ts ignore
 * import { snapshot } from "./snapshot.ts";
 * await snapshot([]);
 * ```
 */
export async function snapshot(argv: string[]): Promise<number> {
  const p = parse(COMMAND, argv, OPTIONS, 0);
  if (bool(p, "help")) {
    writeStdout(SNAPSHOT_HELP);
    return 0;
  }
  const client = await clientFor(COMMAND, p);
  const body = await client.json<{ index: number; term: number; id?: string; size?: number }>(
    "POST",
    "/v1/snapshot",
  );
  print(
    bool(p, "json"),
    body,
    () =>
      `snapshot taken at index ${body.index} (term ${body.term}${
        body.size !== undefined ? `, ${body.size} bytes` : ""
      })`,
  );
  return 0;
}
