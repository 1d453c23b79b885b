/**
 * `raftd transfer-leader [ID]`: hand leadership to another voter.
 *
 * @module
 */

import { writeStdout } from "../src/platform/process.ts";
import { bool, CLIENT_OPTIONS, HELP_OPTION, helpText, parse } from "./args.ts";
import { clientFor } from "./client.ts";
import { print } from "./output.ts";

const COMMAND = "raftd transfer-leader";
const OPTIONS = { ...CLIENT_OPTIONS, ...HELP_OPTION };

/** Help text of `raftd transfer-leader`. */
const TRANSFER_HELP: string = helpText(
  `${COMMAND} [ID] [--server URL] [--json]`,
  "Hand leadership to voter ID, or to the most up-to-date voter when ID is omitted.",
  OPTIONS,
);

/**
 * Run `raftd transfer-leader`.
 *
 * @example
 * ```ts ignore
 * import { transferLeader } from "./transfer_leader.ts";
 * await transferLeader(["n2"]);
 * ```
 */
export async function transferLeader(argv: string[]): Promise<number> {
  const p = parse(COMMAND, argv, OPTIONS, 1);
  if (bool(p, "help")) {
    writeStdout(TRANSFER_HELP);
    return 0;
  }
  const client = await clientFor(COMMAND, p);
  const target = p.positionals[0];
  const body = await client.json<{ from: string; leader: { id: string } | null }>(
    "POST",
    "/v1/leadership-transfer",
    target === undefined ? {} : { id: target },
  );
  print(
    bool(p, "json"),
    body,
    () => `leadership transferred from ${body.from} to ${body.leader?.id ?? "(not known yet)"}`,
  );
  return 0;
}
