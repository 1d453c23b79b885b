/**
 * The raftd HTTP API as one web-standard request handler
 * (`(req: Request) => Promise<Response>`), served by `Deno.serve` or
 * `Bun.serve` through the platform layer.
 *
 * Routes: `/v1/kv/{key}` (GET/PUT/DELETE), `/v1/kv/?prefix=` (GET),
 * `/v1/status`, `/v1/peers` (GET/POST), `/v1/peers/{id}` (DELETE),
 * `/v1/peers/{id}/demote` (POST), `/v1/members/{id}` (PUT),
 * `/v1/snapshot` (POST: compaction; GET: a backup), `/v1/leadership-transfer` (POST),
 * `/v1/join` (POST, authenticated by a join-token proof), `/metrics`, `/health`.
 * Errors are `{"error": "...", "leader"?: {...}}`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Raft } from "../raft.ts";
import type { SnapshotStore } from "../storage/types.ts";
import type { ApiContext } from "./api_context.ts";
import { leaderRef } from "./api_context.ts";
import { BearerAuth } from "./auth.ts";
import { HttpError, toHttpError } from "./errors.ts";
import type { KvFsm, KvResult } from "./kv_fsm.ts";
import { HttpMetrics } from "./metrics.ts";
import { join } from "./routes_join.ts";
import type { ClusterSecrets } from "./secrets.ts";
import {
  addPeer,
  ApplyProgress,
  demotePeer,
  health,
  listPeers,
  metrics,
  registerMember,
  removePeer,
  status,
  takeSnapshot,
  transferLeadership,
} from "./routes_cluster.ts";
import { getSnapshot } from "./routes_backup.ts";
import { deleteKey, getKey, listKeys, putKey } from "./routes_kv.ts";
import { decodePath } from "./validate.ts";
import { describeValue } from "../describe_value.ts";

/**
 * The defaults of the API's limits: what {@linkcode createApi} uses and
 * `raftd serve --help` prints.
 *
 * @example
 * ```ts
 * import { API_DEFAULTS } from "./http_api.ts";
 * console.log(API_DEFAULTS.maxValueBytes); // 1048576
 * ```
 */
export const API_DEFAULTS: Readonly<{
  maxKeyBytes: number;
  maxValueBytes: number;
  timeoutMs: number;
}> = Object.freeze({ maxKeyBytes: 1024, maxValueBytes: 1024 * 1024, timeoutMs: 5000 });

/**
 * Options of {@linkcode createApi}.
 *
 * @example
 * ```ts
 * import type { ApiOptions } from "./http_api.ts";
 * const limits: Partial<ApiOptions> = { maxKeyBytes: 512, maxValueBytes: 64 * 1024, timeoutMs: 2000 };
 * ```
 */
export interface ApiOptions {
  /** The Raft node. */
  raft: Raft<KvResult>;
  /** Its key-value state machine. */
  fsm: KvFsm;
  /** This node's advertised API base URL, e.g. `http://127.0.0.1:8001`. */
  httpUrl: string;
  /** When set, every route but /health requires `Authorization: Bearer <token>`. */
  token?: string;
  /** Longest key in UTF-8 bytes. Default in {@linkcode API_DEFAULTS}. */
  maxKeyBytes?: number;
  /** Largest value in bytes. Default in {@linkcode API_DEFAULTS}. */
  maxValueBytes?: number;
  /** Timeout of each Raft operation (commit, read point, membership change), in ms. Default in {@linkcode API_DEFAULTS}. */
  timeoutMs?: number;
  /** Version shown by /v1/status. */
  version?: string;
  /** The cluster id shown by /v1/status (undefined while the node belongs to none). */
  clusterId?: () => string | undefined;
  /** fetch used to forward to the leader (tests may replace it). */
  fetch?: typeof fetch;
  /** The node's snapshot store, from which `GET /v1/snapshot` streams backups. */
  snapshotStore?: SnapshotStore;
  /**
   * The cluster key and API token: `POST /v1/join` hands them to a server
   * that proves it holds the join token (derived from the key).
   */
  secrets?: ClusterSecrets;
}

/**
 * The API: its handler and its counters.
 *
 * @example
 * ```ts
 * import type { Api } from "./http_api.ts";
 * async function ping(api: Api): Promise<number> {
 *   return (await api.handler(new Request("http://x/health"))).status;
 * }
 * ```
 */
export interface Api {
  /** Answers one request; never throws. */
  handler: (req: Request) => Promise<Response>;
  /** Counters rendered by /metrics. */
  metrics: HttpMetrics;
}

type RouteHandler = (req: Request, url: URL, param: string) => Promise<Response> | Response;

interface Route {
  /** Label in metrics. */
  name: string;
  /** Method → handler. */
  methods: Record<string, RouteHandler>;
  /** The path parameter (key or server id). */
  param: string;
}

const log = getLogger(["raftd", "http"]);

/**
 * Build the API handler for a node.
 *
 * @example
 * ```ts ignore
 * import { createApi } from "./http_api.ts";
 * import { serveHttp } from "../platform/http.ts";
 * const api = createApi({ raft, fsm, httpUrl: "http://127.0.0.1:8001" });
 * serveHttp({ hostname: "127.0.0.1", port: 8001, handler: api.handler });
 * ```
 */
export function createApi(options: ApiOptions): Api {
  const maxKeyBytes = options.maxKeyBytes ?? API_DEFAULTS.maxKeyBytes;
  const maxValueBytes = options.maxValueBytes ?? API_DEFAULTS.maxValueBytes;
  const timeoutMs = options.timeoutMs ?? API_DEFAULTS.timeoutMs;
  for (
    const [name, v] of [["maxKeyBytes", maxKeyBytes], ["maxValueBytes", maxValueBytes], [
      "timeoutMs",
      timeoutMs,
    ]] as const
  ) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new RangeError(`${name} must be a positive integer, got ${describeValue(v)}`);
    }
  }
  const ctx: ApiContext = {
    raft: options.raft,
    fsm: options.fsm,
    httpUrl: options.httpUrl,
    maxKeyBytes,
    maxValueBytes,
    timeoutMs,
    version: options.version ?? "dev",
    clusterId: options.clusterId ?? (() => undefined),
    metrics: new HttpMetrics(),
    fetch: options.fetch ?? fetch,
    snapshotStore: options.snapshotStore,
    secrets: options.secrets ?? {},
  };
  const auth = options.token !== undefined ? new BearerAuth(options.token) : undefined;
  const progress = new ApplyProgress();

  const kv: Record<string, RouteHandler> = {
    GET: (req, url, key) => key === "" ? listKeys(ctx, req, url) : getKey(ctx, req, url, key),
    PUT: (req, url, key) => putKey(ctx, req, url, key),
    DELETE: (req, url, key) => deleteKey(ctx, req, url, key),
  };
  const fixed: Record<string, Route> = {
    "/health": { name: "health", param: "", methods: { GET: () => health(ctx, progress) } },
    "/metrics": { name: "metrics", param: "", methods: { GET: () => metrics(ctx) } },
    "/v1/status": { name: "status", param: "", methods: { GET: () => status(ctx) } },
    "/v1/peers": {
      name: "peers",
      param: "",
      methods: { GET: () => listPeers(ctx), POST: (req, url) => addPeer(ctx, req, url) },
    },
    "/v1/snapshot": {
      name: "snapshot",
      param: "",
      methods: {
        GET: (req, url) => getSnapshot(ctx, req, url),
        POST: () => takeSnapshot(ctx),
      },
    },
    "/v1/join": { name: "join", param: "", methods: { POST: (req) => join(ctx, req) } },
    "/v1/leadership-transfer": {
      name: "leadership_transfer",
      param: "",
      methods: { POST: (req, url) => transferLeadership(ctx, req, url) },
    },
  };

  function match(path: string): Route | undefined {
    const f = fixed[path] ?? fixed[path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : ""];
    if (f) return f;
    if (path === "/v1/kv" || path.startsWith("/v1/kv/")) {
      return { name: "kv", param: decodePath(path.slice("/v1/kv/".length)), methods: kv };
    }
    let m = /^\/v1\/peers\/([^/]+)$/.exec(path);
    if (m) {
      return {
        name: "peer",
        param: decodePath(m[1]),
        methods: { DELETE: (req, url, id) => removePeer(ctx, req, url, id) },
      };
    }
    m = /^\/v1\/peers\/([^/]+)\/demote$/.exec(path);
    if (m) {
      return {
        name: "peer_demote",
        param: decodePath(m[1]),
        methods: { POST: (req, url, id) => demotePeer(ctx, req, url, id) },
      };
    }
    m = /^\/v1\/members\/([^/]+)$/.exec(path);
    if (m) {
      return {
        name: "member",
        param: decodePath(m[1]),
        methods: { PUT: (req, url, id) => registerMember(ctx, req, url, id) },
      };
    }
    return undefined;
  }

  async function dispatch(req: Request): Promise<{ route: string; res: Response }> {
    let routeName = "unknown";
    try {
      const url = new URL(req.url);
      // Authenticate before routing, so that without the token 404s do not map
      // out the API and malformed paths (400s) reveal nothing either.
      // /v1/join authenticates by its own proof: the joiner has no token yet.
      if (auth && !/^\/(health|v1\/join)\/?$/.test(url.pathname) && !auth.check(req)) {
        throw new HttpError(
          401,
          "missing or wrong bearer token (Authorization: Bearer <token>)",
          {},
          {
            "www-authenticate": 'Bearer realm="raftd"',
          },
        );
      }
      const route = match(url.pathname);
      if (!route) throw new HttpError(404, `no such route: ${req.method} ${url.pathname}`);
      routeName = route.name;
      const method = req.method === "HEAD" && route.methods.GET ? "GET" : req.method;
      const handler = route.methods[method];
      if (!handler) {
        const allowed = Object.keys(route.methods).join(", ");
        throw new HttpError(
          405,
          `method ${req.method} is not allowed on ${url.pathname}; allowed: ${allowed}`,
          {},
          { allow: allowed },
        );
      }
      return {
        route: `${route.name}_${method.toLowerCase()}`,
        res: await handler(req, url, route.param),
      };
    } catch (e) {
      const err = toHttpError(e, leaderRef(ctx, ctx.raft.leader));
      if (err.status >= 500 && err.status !== 503 && err.status !== 504) {
        log.warn("{method} {url} failed: {error}", {
          method: req.method,
          url: req.url,
          error: err.message,
        });
      }
      return { route: routeName, res: err.toResponse() };
    }
  }

  async function handler(req: Request): Promise<Response> {
    ctx.metrics.inFlight++;
    try {
      const { route, res } = await dispatch(req);
      ctx.metrics.count(route, res.status);
      return res;
    } finally {
      ctx.metrics.inFlight--;
    }
  }

  return { handler, metrics: ctx.metrics };
}
