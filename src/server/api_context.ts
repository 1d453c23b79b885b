/**
 * What every route handler shares: the node, the state machine, limits, and
 * "run this on the leader, or forward it there".
 *
 * @module
 */

import { NotLeaderError } from "../errors.ts";
import type { LeaderInfo } from "../errors.ts";
import type { Raft } from "../raft.ts";
import type { SnapshotStore } from "../storage/types.ts";
import type { KvFsm, KvResult } from "./kv_fsm.ts";
import { type LeaderRef, unavailable } from "./errors.ts";
import { FORWARDED_HEADER, type ForwardOptions, forwardRequest } from "./forward.ts";
import type { HttpMetrics } from "./metrics.ts";
import type { ClusterSecrets } from "./secrets.ts";

/**
 * Everything a route handler needs.
 *
 * @example
 * ```ts
 * import type { ApiContext } from "./api_context.ts";
 * function describe(ctx: ApiContext): string {
 *   return `${ctx.raft.id} at ${ctx.httpUrl} (values up to ${ctx.maxValueBytes} bytes)`;
 * }
 * ```
 */
export interface ApiContext {
  /** The Raft node. */
  readonly raft: Raft<KvResult>;
  /** Its key-value state machine. */
  readonly fsm: KvFsm;
  /** This node's advertised API base URL, e.g. `http://127.0.0.1:8001`. */
  readonly httpUrl: string;
  /** Longest key in UTF-8 bytes. */
  readonly maxKeyBytes: number;
  /** Largest value in bytes. */
  readonly maxValueBytes: number;
  /** Timeout of each Raft operation, in ms. */
  readonly timeoutMs: number;
  /** Version string shown by /v1/status. */
  readonly version: string;
  /** This node's cluster id, if it belongs to one yet. */
  readonly clusterId: () => string | undefined;
  /** HTTP counters. */
  readonly metrics: HttpMetrics;
  /** fetch used to forward (tests may replace it). */
  readonly fetch: typeof fetch;
  /** Where the node keeps its snapshots (backups stream from there), if the API may read it. */
  readonly snapshotStore: SnapshotStore | undefined;
  /** The cluster key and API token, handed to servers joining with the join token. */
  readonly secrets: ClusterSecrets;
}

/**
 * The leader as the API shows it (with its HTTP address from the replicated
 * member table), or undefined.
 *
 * @example
 * ```ts ignore
 * import { leaderRef } from "./api_context.ts";
 * console.log(leaderRef(ctx, ctx.raft.leader)?.http);
 * ```
 */
export function leaderRef(ctx: ApiContext, leader: LeaderInfo | undefined): LeaderRef | undefined {
  if (!leader) return undefined;
  return { id: leader.id, raft: leader.address, http: ctx.fsm.memberHttp(leader.id) };
}

/**
 * Forward the request to `leader`'s API; 503 + Retry-After when that is not
 * possible (no leader, its address unknown, already forwarded once, or
 * unreachable).
 *
 * @example
 * ```ts ignore
 * import { forwardToLeader } from "./api_context.ts";
 * return await forwardToLeader(ctx, req, url, body, ctx.raft.leader);
 * ```
 */
export async function forwardToLeader(
  ctx: ApiContext,
  req: Request,
  url: URL,
  body: Uint8Array | undefined,
  leader: LeaderInfo | undefined,
  options: ForwardOptions = {},
): Promise<Response> {
  const ref = leaderRef(ctx, leader);
  if (!ref) throw unavailable("no leader is known right now; retry shortly", undefined);
  const by = req.headers.get(FORWARDED_HEADER);
  if (by !== null) {
    throw unavailable(
      `${ctx.raft.id} is not the leader (the request was forwarded here by ${by}); retry shortly`,
      ref,
    );
  }
  if (ref.id === ctx.raft.id) {
    throw unavailable("leadership is changing; retry shortly", undefined);
  }
  if (ref.http === undefined) {
    throw unavailable(
      `the leader is ${ref.id} but its HTTP address is not known yet; retry shortly`,
      ref,
    );
  }
  ctx.metrics.forwarded++;
  try {
    return await forwardRequest(
      req,
      url,
      body,
      ref.http,
      ctx.raft.id,
      ctx.timeoutMs + 2000,
      ctx.fetch,
      options,
    );
  } catch (e) {
    ctx.metrics.forwardErrors++;
    const err = unavailable(
      `could not reach the leader ${ref.id} at ${ref.http}: ${(e as Error).message}`,
      ref,
    );
    // A write may have reached the leader before the connection failed.
    if (req.method !== "GET") err.fields.outcome = "unknown";
    throw err;
  }
}

/**
 * Run `op` when this node is the leader, otherwise forward the request to
 * the leader. A NotLeaderError from `op` (leadership just moved) forwards too.
 *
 * @example
 * ```ts ignore
 * import { onLeader } from "./api_context.ts";
 * return await onLeader(ctx, req, url, body, async () => jsonResponse(200, await ctx.raft.barrier()));
 * ```
 */
export async function onLeader(
  ctx: ApiContext,
  req: Request,
  url: URL,
  body: Uint8Array | undefined,
  op: () => Promise<Response>,
  options: ForwardOptions = {},
): Promise<Response> {
  if (ctx.raft.state !== "leader") {
    return await forwardToLeader(ctx, req, url, body, ctx.raft.leader, options);
  }
  try {
    return await op();
  } catch (e) {
    if (e instanceof NotLeaderError) {
      return await forwardToLeader(ctx, req, url, body, e.leader, options);
    }
    throw e;
  }
}
