/**
 * `raftd status`: one node's view of the cluster.
 *
 * @module
 */

import { writeStdout } from "../src/platform/process.ts";
import { bool, CLIENT_OPTIONS, HELP_OPTION, helpText, parse } from "./args.ts";
import { clientFor } from "./client.ts";
import { print, table } from "./output.ts";

const COMMAND = "raftd status";
const OPTIONS = { ...CLIENT_OPTIONS, ...HELP_OPTION };

/** Help text of `raftd status`. */
const STATUS_HELP: string = helpText(
  `${COMMAND} [--server URL] [--json]`,
  "Show a node's state, term, leader, indexes and the cluster configuration.",
  OPTIONS,
);

/**
 * The JSON of GET /v1/status.
 *
 * @example
 * ```ts
 * import { formatStatus, type StatusBody } from "./status.ts";
 * const s: StatusBody = {
 *   id: "n1", state: "leader", term: 2, leader: { id: "n1", raft: "127.0.0.1:7001", http: null },
 *   commitIndex: 5, appliedIndex: 5, lastIndex: 5, lastSnapshotIndex: 0, configuration: [],
 * };
 * console.log(formatStatus(s));
 * ```
 */
export interface StatusBody {
  id: string;
  state: string;
  term: number;
  leader: { id: string; raft: string; http: string | null } | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  lastSnapshotIndex: number;
  configurationIndex?: number;
  configuration: { id: string; raft: string; http: string | null; suffrage: string }[];
  keys?: number;
  version?: string;
  clusterId?: string | null;
}

/**
 * Render a status as text.
 *
 * @example
 * ```ts ignore
 * import { formatStatus } from "./status.ts";
 * console.log(formatStatus(body));
 * ```
 */
export function formatStatus(s: StatusBody): string {
  const leader = s.leader
    ? `${s.leader.id} (raft ${s.leader.raft}, http ${s.leader.http ?? "unknown"})`
    : "none known";
  const rows = [["ID", "SUFFRAGE", "RAFT", "HTTP", ""]];
  for (const m of s.configuration) {
    rows.push([m.id, m.suffrage, m.raft, m.http ?? "-", m.id === s.leader?.id ? "leader" : ""]);
  }
  return [
    `id:        ${s.id}`,
    `cluster:   ${s.clusterId ?? "none yet"}`,
    `state:     ${s.state} (term ${s.term})`,
    `leader:    ${leader}`,
    `indexes:   commit ${s.commitIndex}, applied ${s.appliedIndex}, last ${s.lastIndex}, snapshot ${s.lastSnapshotIndex}`,
    ...(s.keys !== undefined ? [`keys:      ${s.keys}`] : []),
    ...(s.version !== undefined ? [`version:   ${s.version}`] : []),
    `configuration${s.configurationIndex !== undefined ? ` (index ${s.configurationIndex})` : ""}:`,
    table(rows).split("\n").map((l) => `  ${l}`.trimEnd()).join("\n"),
  ].join("\n");
}

/**
 * Run `raftd status`.
 *
 * @example
 * ```ts ignore
 * import { status } from "./status.ts";
 * await status(["--server", "http://127.0.0.1:8001"]);
 * ```
 */
export async function status(argv: string[]): Promise<number> {
  const p = parse(COMMAND, argv, OPTIONS, 0);
  if (bool(p, "help")) {
    writeStdout(STATUS_HELP);
    return 0;
  }
  const client = await clientFor(COMMAND, p);
  const body = await client.json<StatusBody>("GET", "/v1/status");
  print(bool(p, "json"), body, () => formatStatus(body));
  return 0;
}
