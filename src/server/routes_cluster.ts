/**
 * Cluster routes: status, peers, member addresses, snapshot, leadership
 * transfer, health and metrics.
 *
 * @module
 */

import { type ApiContext, leaderRef, onLeader } from "./api_context.ts";
import { readJsonObject } from "./body.ts";
import { HttpError, jsonResponse, unavailable } from "./errors.ts";
import { encodeRemoveMember, encodeSetMember } from "./kv_command.ts";
import { MEMBER_PROOF_HEADER, verifyMemberProof } from "./member_proof.ts";
import { renderMetrics } from "./metrics.ts";
import { checkHostPort, checkServerId, normalizeHttpUrl } from "./validate.ts";

/**
 * One server as the API shows it.
 *
 * @example
 * ```ts
 * import type { PeerView } from "./routes_cluster.ts";
 * const peer: PeerView = { id: "n2", raft: "127.0.0.1:7002", http: null, suffrage: "staging" };
 * ```
 */
export interface PeerView {
  /** Server id. */
  id: string;
  /** Raft transport address. */
  raft: string;
  /** API base URL when known. */
  http: string | null;
  /** Voting rights. */
  suffrage: "voter" | "nonvoter" | "staging";
}

function peers(ctx: ApiContext): { index: number; servers: PeerView[] } {
  const { index, configuration } = ctx.raft.getConfiguration();
  return {
    index,
    servers: configuration.servers.map((s) => ({
      id: s.id,
      raft: s.address,
      http: ctx.fsm.memberHttp(s.id) ?? null,
      suffrage: s.suffrage,
    })),
  };
}

/**
 * GET /v1/status → this node's view of the cluster.
 *
 * @example
 * ```ts ignore
 * import { status } from "./routes_cluster.ts";
 * const body = await (status(ctx)).json();
 * ```
 */
export function status(ctx: ApiContext): Response {
  const r = ctx.raft;
  const leader = leaderRef(ctx, r.leader);
  const p = peers(ctx);
  const lastContact = r.lastContact;
  return jsonResponse(200, {
    id: r.id,
    clusterId: ctx.clusterId() ?? null,
    state: r.state,
    removed: r.removed,
    term: r.currentTerm,
    leader: leader ? { ...leader, http: leader.http ?? null } : null,
    commitIndex: r.commitIndex,
    appliedIndex: r.appliedIndex,
    lastIndex: r.lastIndex,
    lastSnapshotIndex: r.lastSnapshotIndex,
    lastContactMs: r.state === "leader"
      ? 0
      : lastContact === undefined
      ? null
      : Date.now() - lastContact,
    configurationIndex: p.index,
    configuration: p.servers,
    http: ctx.httpUrl,
    keys: ctx.fsm.size,
    version: ctx.version,
  });
}

/**
 * GET /v1/peers → `{"index", "servers": [{id, raft, http, suffrage}], "leader"}`
 * (this node's latest configuration).
 *
 * @example
 * ```ts ignore
 * import { listPeers } from "./routes_cluster.ts";
 * const res = listPeers(ctx);
 * ```
 */
export function listPeers(ctx: ApiContext): Response {
  return jsonResponse(200, { ...peers(ctx), leader: ctx.raft.leader?.id ?? null });
}

/**
 * Whether member `id` itself asks to set its address to `http`: followers
 * forward requests, bearer token included, to the leader's address, so a
 * token holder must not choose it. Without a cluster key there is no telling
 * (and no member secret to protect): anyone the API admits may.
 */
async function setByMember(
  ctx: ApiContext,
  req: Request,
  id: string,
  http: string,
): Promise<boolean> {
  const key = ctx.secrets.clusterKey;
  if (key === undefined) return true;
  return await verifyMemberProof(key, id, http, req.headers.get(MEMBER_PROOF_HEADER), Date.now());
}

async function recordHttp(ctx: ApiContext, id: string, http: string): Promise<void> {
  if (ctx.fsm.memberHttp(id) !== http) {
    await ctx.raft.apply(encodeSetMember(id, http), { timeout: ctx.timeoutMs });
  }
}

const PEER_FIELDS = new Set(["id", "raft", "http", "voter"]);

/**
 * Re-pointing a live member at another address (a typo, or a second node
 * reusing the id) would cut it off and can cost the quorum: the operator
 * removes it first. A join retries on 409, so a node that really moved gets
 * in once its old entry is gone.
 */
function addressConflict(id: string, current: string, asked: string): HttpError {
  return new HttpError(
    409,
    `server ${JSON.stringify(id)} is already a member at raft address ${current}, ` +
      `not ${asked}; remove it first to re-add it at a new address`,
  );
}

/**
 * POST /v1/peers `{"id","raft","http","voter":true}` → adds the server (a
 * voter joins as staging and is promoted once caught up) and records its
 * HTTP address (with a cluster key, only when the member's own proof comes
 * with it: else the member registers it itself once it runs). Adding a
 * server that is already there as asked is a no-op; one already there at
 * another Raft address is a 409.
 *
 * @example
 * ```ts ignore
 * import { addPeer } from "./routes_cluster.ts";
 * const res = await addPeer(ctx, req, new URL(req.url));
 * ```
 */
export async function addPeer(ctx: ApiContext, req: Request, url: URL): Promise<Response> {
  const body = await readJsonObject(req);
  // Unknown fields are refused rather than ignored: {"suffrage":"nonvoter"}
  // silently adding a voter would be a surprise.
  const unknown = Object.keys(body).filter((k) => !PEER_FIELDS.has(k));
  if (unknown.length > 0) {
    throw new HttpError(
      400,
      `unknown field ${JSON.stringify(unknown[0])}; expected id, raft, http and voter`,
    );
  }
  const id = checkServerId(body.id, "id");
  const raftAddr = checkHostPort(body.raft, "raft");
  const http = body.http === undefined || body.http === null
    ? undefined
    : normalizeHttpUrl(body.http, "http");
  if (body.voter !== undefined && typeof body.voter !== "boolean") {
    throw new HttpError(400, `voter must be true or false, got ${JSON.stringify(body.voter)}`);
  }
  const voter = body.voter !== false;
  // An address not set by the member itself is ignored: its own registration follows.
  const recordedHttp = http !== undefined && await setByMember(ctx, req, id, http)
    ? http
    : undefined;
  const raw = new TextEncoder().encode(JSON.stringify(body));
  return await onLeader(ctx, req, url, raw, async () => {
    const before = ctx.raft.getConfiguration().configuration.servers.find((s) => s.id === id);
    if (before && before.address !== raftAddr) throw addressConflict(id, before.address, raftAddr);
    if (recordedHttp !== undefined) await recordHttp(ctx, id, recordedHttp);
    const { index, configuration } = ctx.raft.getConfiguration();
    const existing = configuration.servers.find((s) => s.id === id);
    if (existing && existing.address !== raftAddr) {
      throw addressConflict(id, existing.address, raftAddr);
    }
    if (
      existing &&
      (voter ? existing.suffrage !== "nonvoter" : existing.suffrage === "nonvoter")
    ) {
      return jsonResponse(200, {
        index,
        id,
        suffrage: existing.suffrage,
        unchanged: true,
        clusterId: ctx.clusterId() ?? null,
      });
    }
    const opts = { timeout: ctx.timeoutMs };
    const r = voter
      ? await ctx.raft.addVoter(id, raftAddr, opts)
      : await ctx.raft.addNonvoter(id, raftAddr, opts);
    const now = ctx.raft.getConfiguration().configuration.servers.find((s) => s.id === id);
    return jsonResponse(200, {
      index: r.index,
      id,
      suffrage: now?.suffrage ?? null,
      clusterId: ctx.clusterId() ?? null,
    });
  });
}

function requireMember(ctx: ApiContext, id: string): void {
  const { configuration } = ctx.raft.getConfiguration();
  if (!configuration.servers.some((s) => s.id === id)) {
    throw new HttpError(404, `server ${JSON.stringify(id)} is not in the configuration`);
  }
}

/**
 * DELETE /v1/peers/{id} → removes the server and forgets its HTTP address.
 *
 * @example
 * ```ts ignore
 * import { removePeer } from "./routes_cluster.ts";
 * const res = await removePeer(ctx, req, new URL(req.url), "n3");
 * ```
 */
export async function removePeer(
  ctx: ApiContext,
  req: Request,
  url: URL,
  id: string,
): Promise<Response> {
  checkServerId(id, "server id");
  return await onLeader(ctx, req, url, undefined, async () => {
    requireMember(ctx, id);
    const r = await ctx.raft.removeServer(id, { timeout: ctx.timeoutMs });
    // Best effort: a leader that removed itself is no longer leader here.
    if (ctx.raft.state === "leader") {
      await ctx.raft.apply(encodeRemoveMember(id), { timeout: ctx.timeoutMs }).catch(() => {});
    }
    return jsonResponse(200, { index: r.index, id });
  });
}

/**
 * POST /v1/peers/{id}/demote → the voter becomes a non-voter.
 *
 * @example
 * ```ts ignore
 * import { demotePeer } from "./routes_cluster.ts";
 * const res = await demotePeer(ctx, req, new URL(req.url), "n3");
 * ```
 */
export async function demotePeer(
  ctx: ApiContext,
  req: Request,
  url: URL,
  id: string,
): Promise<Response> {
  checkServerId(id, "server id");
  return await onLeader(ctx, req, url, undefined, async () => {
    requireMember(ctx, id);
    const r = await ctx.raft.demoteVoter(id, { timeout: ctx.timeoutMs });
    return jsonResponse(200, { index: r.index, id });
  });
}

/**
 * PUT /v1/members/{id} `{"http": "host:port"}` → records a server's API
 * address (used by nodes to register themselves with the leader). With a
 * cluster key only the member itself may: the request must carry its proof
 * (`x-raftd-member-proof`, see `member_proof.ts`), else 403.
 *
 * @example
 * ```ts ignore
 * import { registerMember } from "./routes_cluster.ts";
 * const res = await registerMember(ctx, req, new URL(req.url), "n2");
 * ```
 */
export async function registerMember(
  ctx: ApiContext,
  req: Request,
  url: URL,
  id: string,
): Promise<Response> {
  checkServerId(id, "server id");
  const body = await readJsonObject(req);
  const http = normalizeHttpUrl(body.http, "http");
  if (!(await setByMember(ctx, req, id, http))) {
    throw new HttpError(
      403,
      `only server ${JSON.stringify(id)} itself may set its HTTP address: the request must ` +
        `carry ${MEMBER_PROOF_HEADER}, made with the cluster key`,
    );
  }
  const raw = new TextEncoder().encode(JSON.stringify(body));
  return await onLeader(ctx, req, url, raw, async () => {
    await recordHttp(ctx, id, http);
    return jsonResponse(200, { id, http });
  });
}

/**
 * POST /v1/snapshot → takes a snapshot on this node now (compaction) →
 * `{"index","term","id","size"}`; when nothing was applied since the last
 * one, `{"index","unchanged":true}` (not an error: the log is as compact as it gets).
 *
 * @example
 * ```ts ignore
 * import { takeSnapshot } from "./routes_cluster.ts";
 * const res = await takeSnapshot(ctx);
 * ```
 */
export async function takeSnapshot(ctx: ApiContext): Promise<Response> {
  const r = ctx.raft;
  if (r.appliedIndex <= r.lastSnapshotIndex) {
    return jsonResponse(200, {
      index: r.lastSnapshotIndex,
      appliedIndex: r.appliedIndex,
      unchanged: true,
    });
  }
  const info = await r.snapshot();
  return jsonResponse(200, { index: info.index, term: info.term, id: info.id, size: info.size });
}

/**
 * POST /v1/leadership-transfer `{"id"?}` → hands leadership to `id` (or the
 * most up-to-date voter) and reports the new leader.
 *
 * @example
 * ```ts ignore
 * import { transferLeadership } from "./routes_cluster.ts";
 * const res = await transferLeadership(ctx, req, new URL(req.url));
 * ```
 */
export async function transferLeadership(
  ctx: ApiContext,
  req: Request,
  url: URL,
): Promise<Response> {
  const body = await readJsonObject(req, true);
  const unknown = Object.keys(body).find((k) => k !== "id");
  if (unknown !== undefined) {
    throw new HttpError(400, `unknown field ${JSON.stringify(unknown)}; expected only id`);
  }
  const target = body.id === undefined || body.id === null
    ? undefined
    : checkServerId(body.id, "id");
  const raw = new TextEncoder().encode(JSON.stringify(body));
  return await onLeader(ctx, req, url, raw, async () => {
    if (target !== undefined) {
      const { configuration } = ctx.raft.getConfiguration();
      const s = configuration.servers.find((x) => x.id === target);
      if (!s) {
        throw new HttpError(404, `server ${JSON.stringify(target)} is not in the configuration`);
      }
      if (s.suffrage !== "voter") {
        throw new HttpError(
          400,
          `server ${JSON.stringify(target)} is a ${s.suffrage}, not a voter`,
        );
      }
      if (target === ctx.raft.id) throw new HttpError(400, `${target} is already the leader`);
    }
    const from = ctx.raft.id;
    await ctx.raft.leadershipTransfer(target, { timeout: ctx.timeoutMs });
    // The new leader announces itself with its first heartbeat: wait briefly for it.
    for (let i = 0; i < 50 && (ctx.raft.leader === undefined || ctx.raft.leader.id === from); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const leader = leaderRef(ctx, ctx.raft.leader);
    return jsonResponse(200, {
      from,
      leader: leader ? { ...leader, http: leader.http ?? null } : null,
    });
  });
}

/**
 * Tracks whether the node keeps applying (for /health).
 *
 * @example
 * ```ts
 * import { ApplyProgress } from "./routes_cluster.ts";
 * const p = new ApplyProgress();
 * console.log(p.applying(5, 9, 0), p.applying(5, 9, 20_000)); // true false
 * ```
 */
export class ApplyProgress {
  #applied = -1;
  #changedAt = 0;

  /** True when everything committed is applied or applying moved within `windowMs`. */
  applying(applied: number, commit: number, now: number, windowMs = 10_000): boolean {
    if (applied !== this.#applied) {
      this.#applied = applied;
      this.#changedAt = now;
    }
    return applied >= commit || now - this.#changedAt < windowMs;
  }
}

/**
 * GET /health → 200 when the node knows a leader and is applying, else 503.
 *
 * @example
 * ```ts ignore
 * import { ApplyProgress, health } from "./routes_cluster.ts";
 * const res = health(ctx, new ApplyProgress());
 * ```
 */
export function health(ctx: ApiContext, progress: ApplyProgress): Response {
  const r = ctx.raft;
  const leader = r.leader;
  if (r.state === "shutdown") throw unavailable("the node is shutting down", undefined);
  if (!leader) throw unavailable("no leader is known", undefined);
  if (!progress.applying(r.appliedIndex, r.commitIndex, Date.now())) {
    throw unavailable(
      `the state machine is not applying (applied ${r.appliedIndex}, committed ${r.commitIndex})`,
      leaderRef(ctx, leader),
    );
  }
  return jsonResponse(200, {
    status: "ok",
    id: r.id,
    state: r.state,
    leader: leader.id,
    appliedIndex: r.appliedIndex,
  });
}

/**
 * GET /metrics → Prometheus text.
 *
 * @example
 * ```ts ignore
 * import { metrics } from "./routes_cluster.ts";
 * console.log(await metrics(ctx).text());
 * ```
 */
export function metrics(ctx: ApiContext): Response {
  return new Response(renderMetrics(ctx.raft.stats(), ctx.metrics, { keys: ctx.fsm.size }), {
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}
