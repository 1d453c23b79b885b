/**
 * Keeps this node's HTTP address in the replicated member table, and joins a
 * cluster through another node's API.
 *
 * The Raft configuration only stores transport addresses; followers need the
 * leader's HTTP address to forward requests. Each node therefore registers
 * `id → http` itself: the leader applies the command directly, a follower
 * asks the leader's API (`PUT /v1/members/{id}`). Whenever its entry is
 * missing or stale (e.g. after a restart on a new port) it registers again.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { describeNetError } from "../platform/net_errors.ts";
import type { Raft } from "../raft.ts";
import { encodeSetMember } from "./kv_command.ts";
import { MEMBER_PROOF_HEADER, memberProof } from "./member_proof.ts";
import type { KvFsm, KvResult } from "./kv_fsm.ts";

const log = getLogger(["raftd", "server"]);

function authHeaders(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** The proof that this member sets its own address, when the cluster has a key. */
async function proofHeaders(
  clusterKey: string | undefined,
  id: string,
  http: string,
): Promise<Record<string, string>> {
  if (clusterKey === undefined) return {};
  return { [MEMBER_PROOF_HEADER]: await memberProof(clusterKey, id, http, Date.now()) };
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function responseError(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: string };
    if (typeof body.error === "string") return `${res.status}: ${body.error}`;
  } catch {
    // not JSON
  }
  return `${res.status}: ${text.slice(0, 200)}`;
}

/**
 * Options of {@linkcode MemberRegistrar}.
 *
 * @example
 * ```ts
 * import type { RegistrarOptions } from "./registrar.ts";
 * const timing: Partial<RegistrarOptions> = { intervalMs: 500, timeoutMs: 2000 };
 * ```
 */
export interface RegistrarOptions {
  /** The node. */
  raft: Raft<KvResult>;
  /** Its state machine (holds the member table). */
  fsm: KvFsm;
  /** This node's API base URL. */
  httpUrl: string;
  /** Bearer token of the cluster's API, if any. */
  token?: string;
  /** How often to check, in ms. Default 1000. */
  intervalMs?: number;
  /** Timeout of each attempt, in ms. Default 5000. */
  timeoutMs?: number;
  /** fetch to reach the leader's API with (e.g. one trusting a private CA). */
  fetch?: typeof fetch;
  /**
   * The cluster key, when there is one: the leader then accepts an address
   * only with a proof that a member sets it (see `member_proof.ts`).
   */
  clusterKey?: string;
}

/**
 * Registers this node's HTTP address until the member table has it, and
 * checks again periodically and whenever the leader changes.
 *
 * @example
 * ```ts ignore
 * import { MemberRegistrar } from "./registrar.ts";
 * const registrar = new MemberRegistrar({ raft, fsm, httpUrl: "http://127.0.0.1:8001" });
 * registrar.start();
 * // ...
 * registrar.stop();
 * ```
 */
export class MemberRegistrar {
  #o: Required<Omit<RegistrarOptions, "token" | "clusterKey">> & {
    token: string | undefined;
    clusterKey: string | undefined;
  };
  #timer: ReturnType<typeof setInterval> | undefined;
  #unobserve: (() => void) | undefined;
  #busy = false;
  #stopped = false;
  #lastError = "";

  /** Creates the registrar; call {@linkcode MemberRegistrar.start}. */
  constructor(options: RegistrarOptions) {
    this.#o = {
      intervalMs: 1000,
      timeoutMs: 5000,
      fetch,
      ...options,
      token: options.token,
      clusterKey: options.clusterKey,
    };
  }

  /** Start checking. */
  start(): void {
    this.#timer = setInterval(() => void this.check(), this.#o.intervalMs);
    this.#unobserve = this.#o.raft.observe(
      () => void this.check(),
      (o) => o.type === "leader" || (o.type === "state" && o.state === "leader"),
    );
    void this.check();
  }

  /** Stop checking. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#unobserve?.();
  }

  /** True when the member table holds this node's current address. */
  get registered(): boolean {
    return this.#o.fsm.memberHttp(this.#o.raft.id) === this.#o.httpUrl;
  }

  /** One attempt; resolves true when registered. Never throws. */
  async check(): Promise<boolean> {
    const { raft, fsm, httpUrl } = this.#o;
    if (this.registered) return true;
    if (this.#busy || this.#stopped || raft.state === "shutdown") return false;
    const self = raft.getConfiguration().configuration.servers.some((s) => s.id === raft.id);
    if (!self) return false; // not (yet) a member: nothing to register
    this.#busy = true;
    try {
      if (raft.state === "leader") {
        await raft.apply(encodeSetMember(raft.id, httpUrl), { timeout: this.#o.timeoutMs });
      } else {
        const leader = raft.leader;
        const leaderHttp = leader ? fsm.memberHttp(leader.id) : undefined;
        if (!leader || leaderHttp === undefined || leader.id === raft.id) return false;
        const url = new URL(`/v1/members/${encodeURIComponent(raft.id)}`, leaderHttp);
        const res = await this.#o.fetch(url, {
          method: "PUT",
          headers: {
            "content-type": "application/json",
            ...authHeaders(this.#o.token),
            ...await proofHeaders(this.#o.clusterKey, raft.id, httpUrl),
          },
          body: JSON.stringify({ http: httpUrl }),
          signal: AbortSignal.timeout(this.#o.timeoutMs),
        });
        if (!res.ok) throw new Error(await responseError(res));
        await res.body?.cancel();
      }
      log.info("registered HTTP address {http} for {id}", { http: httpUrl, id: raft.id });
      this.#lastError = "";
      return true;
    } catch (e) {
      const msg = errorText(e);
      // Say it once per distinct problem, not every second.
      if (msg !== this.#lastError) {
        log.debug("registering the HTTP address failed (will retry): {error}", { error: msg });
        this.#lastError = msg;
      }
      return false;
    } finally {
      this.#busy = false;
    }
  }
}

/**
 * Options of {@linkcode joinCluster}.
 *
 * @example
 * ```ts
 * import type { JoinOptions } from "./registrar.ts";
 * const join: JoinOptions = {
 *   via: "http://127.0.0.1:8001",
 *   id: "n2",
 *   raft: "127.0.0.1:7002",
 *   http: "http://127.0.0.1:8002",
 * };
 * ```
 */
export interface JoinOptions {
  /** API base URL of any node of the cluster. */
  via: string;
  /** This node's id. */
  id: string;
  /** This node's advertised Raft address. */
  raft: string;
  /** This node's advertised API base URL. */
  http: string;
  /** Bearer token of the cluster's API, if any. */
  token?: string;
  /**
   * The cluster this node already belongs to, if any: joining a cluster with
   * another id is refused before anything is asked of it.
   */
  clusterId?: string;
  /** Stop trying when this fires. */
  signal?: AbortSignal;
  /** Give up after this many ms (default: never). */
  timeoutMs?: number;
  /** fetch to reach the cluster's API with (e.g. one trusting a private CA). */
  fetch?: typeof fetch;
  /** The cluster key, to prove this server sets its own HTTP address. */
  clusterKey?: string;
}

/**
 * Ask a cluster node (`POST /v1/peers`) to add this node as a voter (it
 * joins as staging and is promoted once caught up). Retries unreachable
 * nodes, 503 (no leader yet) and 409 (another change in flight) with
 * backoff; gives up at once on other 4xx answers (they will not change),
 * and before asking anything when the cluster's id is not `clusterId`.
 *
 * @example
 * ```ts ignore
 * import { joinCluster } from "./registrar.ts";
 * await joinCluster({ via: "http://127.0.0.1:8001", id: "n2", raft: "127.0.0.1:7002", http: "http://127.0.0.1:8002" });
 * ```
 */
export async function joinCluster(options: JoinOptions): Promise<{ index: number }> {
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  let delay = 250;
  let lastError = "";
  for (let attempt = 1;; attempt++) {
    options.signal?.throwIfAborted();
    try {
      if (options.clusterId !== undefined) await checkSameCluster(options, options.clusterId);
      const res = await (options.fetch ?? fetch)(new URL("/v1/peers", options.via), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...authHeaders(options.token),
          ...await proofHeaders(options.clusterKey, options.id, options.http),
        },
        body: JSON.stringify({
          id: options.id,
          raft: options.raft,
          http: options.http,
          voter: true,
        }),
        signal: AbortSignal.timeout(15_000),
      });
      if (res.ok) {
        const body = await res.json() as { index?: number };
        return { index: body.index ?? 0 };
      }
      const err = await responseError(res);
      if (res.status !== 503 && res.status !== 409 && res.status !== 504 && res.status < 500) {
        throw new Error(`join via ${options.via} refused: ${err}`, { cause: "permanent" });
      }
      lastError = err;
    } catch (e) {
      if (e instanceof Error && e.cause === "permanent") throw e;
      if (options.signal?.aborted) throw e;
      lastError = describeNetError(e);
    }
    if (Date.now() + delay > deadline) {
      throw new Error(`join via ${options.via} did not succeed in time; last error: ${lastError}`);
    }
    if (attempt === 1 || attempt % 10 === 0) {
      log.info("join via {via} not accepted yet (attempt {attempt}): {error}; retrying", {
        via: options.via,
        attempt,
        error: lastError,
      });
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, delay);
      options.signal?.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
    delay = Math.min(delay * 2, 3000);
  }
}

/** Refuse (permanently) to join a cluster whose id differs from ours. */
async function checkSameCluster(options: JoinOptions, ours: string): Promise<void> {
  const res = await (options.fetch ?? fetch)(new URL("/v1/status", options.via), {
    headers: authHeaders(options.token),
    signal: AbortSignal.timeout(15_000),
  });
  if (!res.ok) throw new Error(`GET /v1/status: ${await responseError(res)}`);
  const body = await res.json() as { clusterId?: unknown };
  if (typeof body.clusterId === "string" && body.clusterId !== ours) {
    throw new Error(
      `join via ${options.via} refused: this node belongs to cluster ${ours}, ` +
        `the cluster at ${options.via} is ${body.clusterId}; use an empty --data to join it`,
      { cause: "permanent" },
    );
  }
}
