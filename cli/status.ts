/**
 * `raftd status`: one node's view of the cluster.
 *
 * @module
 */

import { writeStdout } from "../src/platform/process.ts";
import { bool, CLIENT_OPTIONS, CliError, HELP_OPTION, helpText, parse } from "./args.ts";
import { ApiClient, clientFor } from "./client.ts";
import { print, table } from "./output.ts";

const COMMAND = "raftd status";
const OPTIONS = {
  cluster: {
    type: "boolean" as const,
    help: "ask every member and show one row each (exit 1 unless all are healthy)",
  },
  ...CLIENT_OPTIONS,
  ...HELP_OPTION,
};

/** Help text of `raftd status`. */
const STATUS_HELP: string = helpText(
  `${COMMAND} [--cluster] [--server URL] [--json]`,
  "Show a node's state, term, leader, indexes and the cluster configuration; with\n" +
    "--cluster, every member's (id, state, term, commit, applied, lag, version, health).",
  OPTIONS,
);

/**
 * One member as `raftd status --cluster` shows it.
 *
 * @example
 * ```ts
 * import type { MemberStatus } from "./status.ts";
 * const m: MemberStatus = {
 *   id: "n2", raft: "127.0.0.1:7002", http: "http://127.0.0.1:8002", suffrage: "voter",
 *   state: "follower", term: 3, commitIndex: 10, appliedIndex: 10, lag: 0,
 *   version: "0.1.0", clusterId: null, health: "ok",
 * };
 * ```
 */
export interface MemberStatus {
  id: string;
  raft: string;
  http: string | null;
  suffrage: string;
  state: string | null;
  term: number | null;
  commitIndex: number | null;
  appliedIndex: number | null;
  /** Entries the leader committed that this member has not applied yet. */
  lag: number | null;
  version: string | null;
  clusterId: string | null;
  /** `ok`, or why not (unreachable, no leader known, another cluster, ...). */
  health: string;
}

/** How long each member may take to answer, in ms. */
const MEMBER_TIMEOUT_MS = 3000;

async function memberStatus(
  server: { id: string; raft: string; http: string | null; suffrage: string },
  via: ApiClient,
): Promise<{ status?: StatusBody; health: string }> {
  if (server.http === null) return { health: "HTTP address unknown" };
  // The same token and TLS settings: every member serves the same API.
  const client = new ApiClient(server.http, via.token, 0, MEMBER_TIMEOUT_MS, via.fetch);
  let status: StatusBody;
  try {
    status = await client.json<StatusBody>("GET", "/v1/status");
  } catch (e) {
    return { health: `unreachable: ${(e as Error).message}` };
  }
  if (status.id !== server.id) {
    return { status, health: `answers as ${status.id}, not ${server.id}` };
  }
  const res = await client.request("GET", "/health", undefined, [503]).catch((e: Error) => e);
  if (res instanceof Error) return { status, health: `unreachable: ${res.message}` };
  if (res.ok) {
    await res.body?.cancel();
    return { status, health: "ok" };
  }
  const body = await res.json().catch(() => ({})) as { error?: string };
  return { status, health: body.error ?? `health check answered ${res.status}` };
}

async function clusterStatus(p: ReturnType<typeof parse>): Promise<number> {
  const client = await clientFor(COMMAND, p);
  const peers = await client.json<{
    leader: string | null;
    servers: { id: string; raft: string; http: string | null; suffrage: string }[];
  }>("GET", "/v1/peers");
  const answers = await Promise.all(
    peers.servers.map((s) => memberStatus(s, client)),
  );
  const commit = Math.max(0, ...answers.map((a) => a.status?.commitIndex ?? 0));
  const clusterIds = new Set(answers.map((a) => a.status?.clusterId).filter((c) => c));
  const rows: MemberStatus[] = peers.servers.map((s, i) => {
    const st = answers[i].status;
    let health = answers[i].health;
    if (health === "ok" && clusterIds.size > 1) health = `cluster id ${st?.clusterId} differs`;
    return {
      id: s.id,
      raft: s.raft,
      http: s.http,
      suffrage: s.suffrage,
      state: st?.state ?? null,
      term: st?.term ?? null,
      commitIndex: st?.commitIndex ?? null,
      appliedIndex: st?.appliedIndex ?? null,
      lag: st ? Math.max(0, commit - st.appliedIndex) : null,
      version: st?.version ?? null,
      clusterId: st?.clusterId ?? null,
      health,
    };
  });
  print(bool(p, "json"), rows, () => {
    const dash = (v: unknown) => v === null || v === undefined ? "-" : String(v);
    return table([
      ["ID", "STATE", "TERM", "COMMIT", "APPLIED", "LAG", "VERSION", "HEALTH"],
      ...rows.map((r) => [
        r.id,
        r.state === null ? "-" : `${r.state}${r.suffrage === "voter" ? "" : ` (${r.suffrage})`}`,
        dash(r.term),
        dash(r.commitIndex),
        dash(r.appliedIndex),
        dash(r.lag),
        dash(r.version),
        r.health,
      ]),
    ]);
  });
  const sick = rows.filter((r) => r.health !== "ok");
  if (sick.length > 0) {
    throw new CliError(
      `${COMMAND}: ${sick.length} of ${rows.length} members are not healthy: ${
        sick.map((r) => `${r.id} (${r.health})`).join(", ")
      }`,
    );
  }
  return 0;
}

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
  removed?: boolean;
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
    `state:     ${s.state} (term ${s.term})${
      s.removed ? "; removed from the cluster, shutting down" : ""
    }`,
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
  if (bool(p, "cluster")) return await clusterStatus(p);
  const client = await clientFor(COMMAND, p);
  const body = await client.json<StatusBody>("GET", "/v1/status");
  print(bool(p, "json"), body, () => formatStatus(body));
  return 0;
}
