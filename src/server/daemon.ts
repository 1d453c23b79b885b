/**
 * The raftd daemon: one Raft node with file storage and the TCP transport,
 * the replicated key-value store, and the HTTP API.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Config } from "../config.ts";
import { type HttpTlsOptions, listenHttp } from "../platform/http.ts";
import { fetchWithTls, type HttpClientTls } from "../platform/http_client.ts";
import { WarningLimiter } from "../transport/warning_limiter.ts";
import type { HttpServer } from "../platform/http.ts";
import { describeNetError } from "../platform/net_errors.ts";
import { changeMode, ensureDir, fileMode, readTextFile } from "../platform/process.ts";
import { Raft } from "../raft.ts";
import { FileLogStore, FileSnapshotStore, FileStableStore } from "../storage/mod.ts";
import {
  newClusterId,
  TcpTransport,
  type TcpTransportTlsOptions,
  TransportError,
} from "../transport/mod.ts";
import type { Transport } from "../transport/types.ts";
import { lockDataDir } from "./data_dir_lock.ts";
import { createApi } from "./http_api.ts";
import { withCheckedSnapshots } from "./checked_snapshots.ts";
import { KvFsm, type KvResult } from "./kv_fsm.ts";
import { checkedKvSnapshot } from "./kv_snapshot.ts";
import {
  API_TOKEN_FILE,
  CLUSTER_KEY_FILE,
  type ClusterSecrets,
  fetchJoinSecrets,
  isLoopbackHost,
  joinTokenFor,
  loadSecrets,
  randomSecret,
  storeSecrets,
} from "./secrets.ts";
import { NodeIdentity } from "./node_identity.ts";
import { checkNoUnfinishedRestore } from "./restore.ts";
import { joinCluster, MemberRegistrar } from "./registrar.ts";
import { checkHostPort, checkServerId, normalizeHttpUrl } from "./validate.ts";

const log = getLogger(["raftd", "server"]);

/**
 * Raft tunables the daemon passes through (everything but the id).
 *
 * @example
 * ```ts
 * import type { DaemonRaftConfig } from "./daemon.ts";
 * const raft: DaemonRaftConfig = { heartbeatInterval: 50, electionTimeout: 500 };
 * ```
 */
export type DaemonRaftConfig = Omit<Config, "id">;

/**
 * Options of {@linkcode startDaemon}.
 *
 * @example
 * ```ts
 * import type { DaemonOptions } from "./daemon.ts";
 * const options: DaemonOptions = {
 *   id: "n2",
 *   raftAddress: "127.0.0.1:7002",
 *   httpAddress: "127.0.0.1:8002",
 *   dataDir: "./data/n2",
 *   join: "http://127.0.0.1:8001",
 * };
 * ```
 */
export interface DaemonOptions {
  /** This server's id. */
  id: string;
  /** `host:port` the Raft transport binds (port 0 picks a free one). */
  raftAddress: string;
  /** `host:port` the HTTP API binds (port 0 picks a free one). */
  httpAddress: string;
  /** Raft address other servers use to reach this one (default: the bound address). */
  advertiseRaft?: string;
  /** API base URL other servers use (default: `http://` + the bound address). */
  advertiseHttp?: string;
  /** Directory of the log, the hard state and the snapshots. */
  dataDir: string;
  /** Start a new single-node cluster (ignored with a notice when the data directory holds state). */
  bootstrap?: boolean;
  /** API base URL of a cluster node to join through. */
  join?: string;
  /**
   * When set the API requires `Authorization: Bearer <token>` (and joins send
   * it). Default: `DIR/api.token` when present.
   */
  token?: string;
  /**
   * Shared cluster secret of the transport (every node must have the same).
   * Default: `DIR/cluster.key` when present.
   */
  clusterKey?: Uint8Array;
  /**
   * With `join`: get the cluster key and API token from the member joined
   * through, proving this join token (printed by the bootstrap that made
   * them), and keep them in the data directory.
   */
  joinToken?: string;
  /**
   * Run without a cluster key or an API token though the Raft port or the
   * API is reachable from other hosts (bound to a non-loopback address).
   * Without it such a node refuses to start, unless it bootstraps a new
   * cluster, which then makes the missing secrets.
   */
  insecure?: boolean;
  /** TLS for the transport. */
  tls?: TcpTransportTlsOptions;
  /** HTTPS for the API, and how to reach other members' HTTPS APIs. */
  httpTls?: DaemonHttpTlsOptions;
  /** Longest key in UTF-8 bytes (default 1024). */
  maxKeyBytes?: number;
  /** Largest value in bytes (default 1 MiB). */
  maxValueBytes?: number;
  /**
   * A request head must arrive within this of the connection opening or of
   * the previous response, in ms; else the connection is closed (default 10000).
   */
  httpHeadTimeoutMs?: number;
  /** Timeout of each Raft operation behind an API call, in ms (default 5000). */
  timeoutMs?: number;
  /** Raft tunables. */
  raft?: DaemonRaftConfig;
  /** Version shown by /v1/status. */
  version?: string;
}

/**
 * HTTPS of the daemon's API (PEM files).
 *
 * @example
 * ```ts
 * import type { DaemonHttpTlsOptions } from "./daemon.ts";
 * const httpTls: DaemonHttpTlsOptions = {
 *   certFile: "/etc/raftd/api.pem", keyFile: "/etc/raftd/api.key", clientCaFile: "/etc/raftd/ca.pem",
 * };
 * ```
 */
export interface DaemonHttpTlsOptions {
  /** Certificate the API serves (and presents to other members' APIs). */
  certFile?: string;
  /** Its private key. */
  keyFile?: string;
  /** Require API clients to present certificates chaining to this CA. */
  clientCaFile?: string;
  /** CA other members' API certificates chain to (default: `clientCaFile`). */
  caFile?: string;
}

/**
 * A running daemon.
 *
 * @example
 * ```ts
 * import type { Daemon } from "./daemon.ts";
 * async function restart(d: Daemon) {
 *   console.log(`stopping ${d.raft.id} (${d.httpUrl})`);
 *   await d.stop();
 * }
 * ```
 */
export interface Daemon {
  /** The Raft node. */
  readonly raft: Raft<KvResult>;
  /** The key-value state machine. */
  readonly fsm: KvFsm;
  /** The advertised Raft address. */
  readonly raftAddress: string;
  /** The advertised API base URL. */
  readonly httpUrl: string;
  /** The data directory's identity: server id and cluster id. */
  readonly identity: NodeIdentity;
  /** Stop serving, shut the node down and close the stores. Idempotent. */
  stop(): Promise<void>;
  /** Resolves once stopped. */
  readonly stopped: Promise<void>;
  /** Why the daemon stopped on its own (undefined after a requested stop). */
  readonly failure: string | undefined;
  /**
   * The join token, when this start made the cluster's secrets (a bootstrap
   * reachable from other hosts): print it for the operator.
   */
  readonly joinToken: string | undefined;
}

function splitHostPort(addr: string, flag: string): { hostname: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:\s]+):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[2]) > 65535) {
    throw new RangeError(`${flag} must be host:port, got ${JSON.stringify(addr)}`);
  }
  return { hostname: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

/** Run a validator from validate.ts, turning its HTTP error into a plain one for the CLI. */
function checkOption<T>(check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw new RangeError((e as Error).message);
  }
}

/** Bind a listener; a failure names the flag and address (e.g. a port already in use). */
async function bindOrExplain<T>(
  flag: string,
  address: string,
  bind: () => T | Promise<T>,
): Promise<T> {
  try {
    return await bind();
  } catch (e) {
    // The transport's error already names the address; say only why, in the same words on every runtime.
    const reason = describeNetError(e instanceof TransportError && e.cause ? e.cause : e);
    throw new Error(`cannot listen on ${flag} ${address}: ${reason}`, { cause: e });
  }
}

/** Read the PEM files of `--http-tls-*`: what to serve, and how to reach other members. */
async function readHttpTls(
  options: DaemonHttpTlsOptions | undefined,
): Promise<{ serve?: HttpTlsOptions; client: HttpClientTls }> {
  if (options === undefined) return { client: {} };
  const read = async (flag: string, file: string | undefined) => {
    if (file === undefined) return undefined;
    try {
      return await readTextFile(file);
    } catch (e) {
      throw new Error(`cannot read ${flag} ${file}: ${(e as Error).message}`, { cause: e });
    }
  };
  if ((options.certFile === undefined) !== (options.keyFile === undefined)) {
    throw new RangeError("--http-tls-cert and --http-tls-key go together");
  }
  if (options.clientCaFile !== undefined && options.certFile === undefined) {
    throw new RangeError("--http-tls-client-ca needs --http-tls-cert and --http-tls-key");
  }
  const cert = await read("--http-tls-cert", options.certFile);
  const key = await read("--http-tls-key", options.keyFile);
  const clientCa = await read("--http-tls-client-ca", options.clientCaFile);
  const ca = (await read("--http-tls-ca", options.caFile)) ?? clientCa;
  return {
    serve: cert !== undefined && key !== undefined
      ? { cert, key, ...(clientCa !== undefined ? { clientCa } : {}) }
      : undefined,
    // Our certificate doubles as the client certificate other members may ask for.
    client: { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert, key } : {}) },
  };
}

/**
 * The cluster key and API token this server runs with: given, or stored in
 * the data directory, or fetched with the join token, or made by a
 * bootstrap that is reachable from other hosts. A server reachable from
 * other hosts without both refuses to start unless `insecure`.
 */
async function resolveSecrets(
  options: DaemonOptions,
  bootstrap: boolean,
  memberFetch: typeof fetch,
): Promise<ClusterSecrets & { generated: boolean }> {
  const stored = await loadSecrets(options.dataDir);
  let clusterKey = options.clusterKey === undefined
    ? stored.clusterKey
    : new TextDecoder().decode(options.clusterKey);
  let apiToken = options.token ?? stored.apiToken;
  let generated = false;
  if (options.joinToken !== undefined && clusterKey === undefined) {
    if (options.join === undefined) throw new RangeError("--join-token needs --join");
    log.info("asking {via} for the cluster's secrets with the join token", {
      via: options.join,
    });
    const fetched = await fetchJoinSecrets(options.join, options.joinToken, options.id, {
      fetch: memberFetch,
    });
    clusterKey = fetched.clusterKey;
    apiToken ??= fetched.apiToken;
    await storeSecrets(options.dataDir, { clusterKey, apiToken: fetched.apiToken });
    log.info("got the cluster key and API token; kept in {dir}", { dir: options.dataDir });
  }
  const exposed = [options.raftAddress, options.httpAddress]
    .map((a) => splitHostPort(a, "address").hostname)
    .filter((host) => !isLoopbackHost(host));
  if (exposed.length > 0 && (clusterKey === undefined || apiToken === undefined)) {
    if (bootstrap && !options.insecure) {
      const made = {
        clusterKey: clusterKey ?? randomSecret(),
        apiToken: apiToken ?? randomSecret(),
      };
      await storeSecrets(options.dataDir, {
        clusterKey: clusterKey === undefined ? made.clusterKey : undefined,
        apiToken: apiToken === undefined ? made.apiToken : undefined,
      });
      ({ clusterKey, apiToken } = made);
      generated = true;
      log.info("made a cluster key and an API token in {dir} ({key}, {token})", {
        dir: options.dataDir,
        key: CLUSTER_KEY_FILE,
        token: API_TOKEN_FILE,
      });
    } else if (!options.insecure) {
      const missing = [
        clusterKey === undefined ? "no cluster key (--cluster-key-file)" : undefined,
        apiToken === undefined ? "no API token (--api-token-file)" : undefined,
      ].filter((m) => m !== undefined).join(" and ");
      throw new RangeError(
        `${exposed.join(" and ")} ${exposed.length > 1 ? "are" : "is"} reachable from other ` +
          `hosts and this server has ${missing}: anyone who can reach it could read, ` +
          "write and take over the cluster. Give them, or --join with --join-token (from the " +
          "bootstrap), or --bootstrap a new cluster (which makes them), or bind loopback; " +
          "--insecure runs without them",
      );
    } else {
      log.warn(
        "--insecure: {exposed} reachable from other hosts without {what}; anyone who can " +
          "reach them can read, write and take over the cluster",
        {
          exposed: exposed.join(" and "),
          what: clusterKey === undefined ? "a cluster key" : "an API token",
        },
      );
    }
  }
  return { clusterKey, apiToken, generated };
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

/**
 * Start a raftd node: open the stores in `dataDir`, listen for Raft traffic
 * and HTTP, bootstrap or join as asked, and keep this node's HTTP address
 * registered in the replicated member table.
 *
 * @example
 * ```ts ignore
 * import { startDaemon } from "./daemon.ts";
 * const d = await startDaemon({
 *   id: "n1", raftAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001",
 *   dataDir: "./data/n1", bootstrap: true,
 * });
 * await d.stop();
 * ```
 */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const httpBind = splitHostPort(options.httpAddress, "--http");
  splitHostPort(options.raftAddress, "--raft");
  // Checked up front: a node whose id the API cannot name could never be
  // removed or demoted, and a join URL that cannot parse would retry forever.
  checkOption(() => checkServerId(options.id, "--id"));
  const joinUrl = options.join === undefined
    ? undefined
    : checkOption(() => normalizeHttpUrl(options.join, "--join"));
  if (options.advertiseHttp !== undefined) {
    checkOption(() => normalizeHttpUrl(options.advertiseHttp, "--advertise-http"));
  }
  if (options.advertiseRaft !== undefined) {
    checkOption(() => checkHostPort(options.advertiseRaft, "--advertise-raft"));
  }
  // Certificates are read before anything else: a wrong path fails at once.
  const httpTls = await readHttpTls(options.httpTls);
  const memberFetch = fetchWithTls(httpTls.client);
  await ensureDir(options.dataDir);
  // Every value is in there: a directory others can enter (made by an older
  // version, or by hand) is closed to them.
  const dataMode = await fileMode(options.dataDir);
  if (dataMode !== undefined && (dataMode & 0o077) !== 0) {
    await changeMode(options.dataDir, dataMode & 0o700);
    log.info("data directory {dir} was mode {old}: now {mode}, private to its owner", {
      dir: options.dataDir,
      old: dataMode.toString(8).padStart(4, "0"),
      mode: (dataMode & 0o700).toString(8).padStart(4, "0"),
    });
  }

  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    cleanups.length = 0;
  };
  try {
    // Before anything reads or repairs the stores: one process per directory.
    const lock = await lockDataDir(options.dataDir);
    cleanups.push(() => lock.release());
    await checkNoUnfinishedRestore(options.dataDir);
    const identity = await NodeIdentity.open(options.dataDir);
    await identity.claim(options.id);
    const logStore = await FileLogStore.open(`${options.dataDir}/log`);
    cleanups.push(() => logStore.close());
    const stableStore = await FileStableStore.open(options.dataDir);
    cleanups.push(() => stableStore.close());
    const snapshotStore = await FileSnapshotStore.open(`${options.dataDir}/snapshots`, {
      retain: options.raft?.retainSnapshots ?? 2,
    });
    const existing = await Raft.hasExistingState({ logStore, stableStore, snapshotStore });
    const bootstrap = options.bootstrap === true && !existing;
    // The id is set before the transport listens, so a fresh bootstrap never
    // adopts the id of whoever dials it first.
    if (bootstrap) await identity.startCluster(newClusterId());
    if (existing && identity.clusterId === undefined) {
      log.warn(
        "this data directory records no cluster id (it predates them): it takes the id " +
          "of the first peer that dials it",
      );
    }

    if (
      options.advertiseRaft === undefined &&
      isWildcard(splitHostPort(options.raftAddress, "--raft").hostname)
    ) {
      throw new RangeError("--advertise-raft is required when --raft binds all interfaces");
    }
    const secrets = await resolveSecrets(options, bootstrap, memberFetch);
    const clusterKey = secrets.clusterKey === undefined
      ? undefined
      : new TextEncoder().encode(secrets.clusterKey);
    const token = secrets.apiToken;
    const tcp = await bindOrExplain(
      "--raft",
      options.raftAddress,
      () =>
        TcpTransport.listen({
          address: options.raftAddress,
          advertiseAddress: options.advertiseRaft,
          clusterKey,
          cluster: identity,
          tls: options.tls,
        }),
    );
    // Snapshot bytes a peer sends are checked before Raft stores and restores them.
    const transport: Transport = withCheckedSnapshots(tcp, checkedKvSnapshot);
    cleanups.push(() => transport.close());
    const raftAddress = transport.localAddress;

    const fsm = new KvFsm();
    // A removed server exits (0) rather than linger as a member of nothing.
    const raft = await Raft.create<KvResult>(
      {
        shutdownOnRemove: true,
        ...options.raft,
        id: options.id,
      },
      fsm,
      {
        logStore,
        stableStore,
        snapshotStore,
        transport,
      },
    );
    cleanups.push(() => raft.shutdown());

    // Bind HTTP before bootstrapping so the advertised URL is final (port 0).
    let handler: (req: Request) => Promise<Response> = () =>
      Promise.resolve(new Response("starting\n", { status: 503, headers: { "retry-after": "1" } }));
    const acceptWarnings = new WarningLimiter();
    const server: HttpServer = await bindOrExplain("--http", options.httpAddress, () =>
      listenHttp({
        hostname: httpBind.hostname,
        port: httpBind.port,
        handler: (req) => handler(req),
        ...(httpTls.serve ? { tls: httpTls.serve } : {}),
        headTimeoutMs: options.httpHeadTimeoutMs,
        onAcceptError: (e) => {
          if (!acceptWarnings.allow()) return;
          log.warn("accepting an HTTP connection failed (retrying after a pause): {error}", {
            error: e instanceof Error ? e.message : String(e),
          });
        },
      }));
    cleanups.push(() => server.shutdown(1000));
    if (options.advertiseHttp === undefined && isWildcard(httpBind.hostname)) {
      throw new RangeError("--advertise-http is required when --http binds all interfaces");
    }
    const httpUrl = options.advertiseHttp ??
      `${httpTls.serve ? "https" : "http"}://${
        server.hostname.includes(":") ? `[${server.hostname}]` : server.hostname
      }:${server.port}`;
    const api = createApi({
      raft,
      fsm,
      httpUrl,
      token,
      maxKeyBytes: options.maxKeyBytes,
      maxValueBytes: options.maxValueBytes,
      timeoutMs: options.timeoutMs,
      version: options.version,
      clusterId: () => identity.clusterId,
      snapshotStore,
      fetch: memberFetch,
      secrets,
    });
    handler = api.handler;
    log.info("{id} serving: raft {raft}, http {http}, data {data}", {
      id: options.id,
      raft: raftAddress,
      http: httpUrl,
      data: options.dataDir,
    });

    if (bootstrap) {
      await raft.bootstrapCluster({
        servers: [{ id: options.id, address: raftAddress, suffrage: "voter" }],
      });
      log.info("bootstrapped a new single-node cluster {clusterId}", {
        clusterId: identity.clusterId,
      });
    } else if (options.bootstrap) {
      log.info("the data directory already holds state: --bootstrap ignored");
    }

    let stopping: Promise<void> | undefined;
    let failure: string | undefined;
    let resolveStopped!: () => void;
    const stopped = new Promise<void>((r) => resolveStopped = r);
    const stop = () => {
      stopping ??= (async () => {
        log.info("shutting down");
        await cleanup();
        log.info("stopped");
        resolveStopped();
      })();
      return stopping;
    };

    const unobserve = raft.observe((o) => {
      if (o.type === "removed") {
        log.info(
          "this server was removed from the cluster (configuration at index {index}); " +
            "shutting down",
          { index: o.index },
        );
      } else if (o.type === "state" && o.state === "shutdown" && stopping === undefined) {
        if (raft.removed) {
          void stop();
          return;
        }
        // Raft stopped on its own (e.g. a storage failure): a daemon that can
        // no longer serve should exit so a supervisor restarts it.
        failure = "the Raft node stopped unexpectedly";
        log.error("{failure}; shutting down", { failure });
        void stop();
      } else if (o.type === "leader") {
        if (o.leader) {
          log.info("leader is {leader} (term {term})", { leader: o.leader.id, term: o.term });
        } else log.info("no leader (term {term})", { term: o.term });
      } else if (o.type === "peer") {
        log.info("peer {id} {change} ({address})", {
          id: o.id,
          change: o.change,
          address: o.address,
        });
      }
    });
    cleanups.push(() => Promise.resolve(unobserve()));

    const registrar = new MemberRegistrar({
      raft,
      fsm,
      httpUrl,
      token,
      fetch: memberFetch,
      clusterKey: secrets.clusterKey,
    });
    registrar.start();
    cleanups.push(() => Promise.resolve(registrar.stop()));

    const joinAbort = new AbortController();
    cleanups.push(() => Promise.resolve(joinAbort.abort()));
    if (options.join !== undefined) {
      const member = raft.getConfiguration().configuration.servers.some((s) => s.id === options.id);
      if (existing && member) {
        log.info("already a member of a cluster: --join ignored");
      } else {
        joinCluster({
          via: joinUrl ?? options.join,
          id: options.id,
          raft: raftAddress,
          http: httpUrl,
          token,
          clusterId: identity.clusterId,
          fetch: memberFetch,
          clusterKey: secrets.clusterKey,
          signal: joinAbort.signal,
        }).then(
          (r) =>
            log.info("joined the cluster via {via} (index {index})", {
              via: options.join,
              index: r.index,
            }),
          (e) => {
            if (joinAbort.signal.aborted) return;
            log.error("could not join via {via}: {error}", {
              via: options.join,
              error: (e as Error).message,
            });
            // Refused for good (another cluster, a bad request): a node that can
            // never join exits, non-zero, rather than wait unseen.
            if (stopping === undefined) {
              failure = `could not join via ${options.join}: ${(e as Error).message}`;
              void stop();
            }
          },
        );
      }
    }

    return {
      raft,
      fsm,
      raftAddress,
      httpUrl,
      identity,
      stopped,
      get failure() {
        return failure;
      },
      joinToken: secrets.generated ? await joinTokenFor(secrets.clusterKey!) : undefined,
      stop,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
