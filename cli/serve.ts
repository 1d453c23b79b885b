/**
 * `raftd serve`: run a node until SIGINT/SIGTERM.
 *
 * @module
 */

import { DEFAULT_CONFIG } from "../src/config.ts";
import { API_DEFAULTS } from "../src/server/http_api.ts";
import { startDaemon } from "../src/server/daemon.ts";
import type { DaemonRaftConfig } from "../src/server/daemon.ts";
import {
  ExposedSecretError,
  onSignals,
  readSecretFile,
  writeStdout,
} from "../src/platform/process.ts";
import {
  bool,
  CliError,
  HELP_OPTION,
  helpText,
  int,
  type OptionSpec,
  parse,
  str,
  UsageError,
} from "./args.ts";
import { setupLogging } from "./logging.ts";
import { VERSION } from "./version.ts";

const COMMAND = "raftd serve";

const OPTIONS: Record<string, OptionSpec> = {
  id: { type: "string", arg: "ID", help: "this server's id, stable across restarts (required)" },
  raft: {
    type: "string",
    arg: "HOST:PORT",
    help: "Raft transport address to bind (default 127.0.0.1:7001)",
  },
  http: {
    type: "string",
    arg: "HOST:PORT",
    help: "HTTP API address to bind (default 127.0.0.1:8001)",
  },
  data: {
    type: "string",
    arg: "DIR",
    help: "data directory: log, hard state, snapshots (required)",
  },
  bootstrap: {
    type: "boolean",
    help: "start a new single-node cluster (ignored with a notice when DIR holds state)",
  },
  join: {
    type: "string",
    arg: "URL",
    help: "join the cluster through this node's API (e.g. http://127.0.0.1:8001)",
  },
  "advertise-raft": {
    type: "string",
    arg: "HOST:PORT",
    help: "Raft address peers use (default: --raft)",
  },
  "advertise-http": {
    type: "string",
    arg: "URL",
    help: "API URL peers use (default: http:// + --http)",
  },
  "api-token-file": {
    type: "string",
    arg: "FILE",
    help: "require Authorization: Bearer <token in FILE> on the API (all but /health; " +
      "default DIR/api.token when present)",
  },
  "cluster-key-file": {
    type: "string",
    arg: "FILE",
    help: "shared secret every node of the cluster must know (transport handshake; " +
      "default DIR/cluster.key when present)",
  },
  "join-token": {
    type: "string",
    arg: "TOKEN",
    help: "with --join: get the cluster key and API token from that member (the token " +
      "is printed by the bootstrap that made them)",
  },
  "join-token-file": { type: "string", arg: "FILE", help: "like --join-token, read from FILE" },
  insecure: {
    type: "boolean",
    help: "run without a cluster key or API token though --raft or --http is reachable " +
      "from other hosts (anyone who reaches them can take the cluster over)",
  },
  "http-tls-cert": {
    type: "string",
    arg: "FILE",
    help: "serve the API over HTTPS with this PEM certificate chain",
  },
  "http-tls-key": { type: "string", arg: "FILE", help: "the API certificate's PEM private key" },
  "http-tls-client-ca": {
    type: "string",
    arg: "FILE",
    help: "require API clients to present a certificate chaining to this PEM CA",
  },
  "http-tls-ca": {
    type: "string",
    arg: "FILE",
    help: "PEM CA of the other members' API certificates (default: --http-tls-client-ca)",
  },
  "tls-cert": {
    type: "string",
    arg: "FILE",
    help: "Raft port TLS: PEM certificate chain, presented to peers both ways (needs --tls-ca)",
  },
  "tls-key": { type: "string", arg: "FILE", help: "Raft port TLS: PEM private key" },
  "tls-ca": {
    type: "string",
    arg: "FILE",
    help: "Raft port TLS: PEM CA that must have signed every peer's certificate (mutual TLS)",
  },
  "max-key-bytes": {
    type: "string",
    arg: "N",
    help: `longest key in bytes (default ${API_DEFAULTS.maxKeyBytes})`,
  },
  "max-value-bytes": {
    type: "string",
    arg: "N",
    help: `largest value in bytes (default ${API_DEFAULTS.maxValueBytes})`,
  },
  "http-head-timeout": {
    type: "string",
    arg: "MS",
    help: "close an HTTP connection whose request head is not complete within MS of it " +
      "opening or of the previous response (default 10000)",
  },
  "request-timeout": {
    type: "string",
    arg: "MS",
    help: `timeout of each write/read/change in ms (default ${API_DEFAULTS.timeoutMs})`,
  },
  "heartbeat-interval": {
    type: "string",
    arg: "MS",
    help: `leader heartbeat interval (default ${DEFAULT_CONFIG.heartbeatInterval})`,
  },
  "election-timeout": {
    type: "string",
    arg: "MS",
    help: `election timeout, randomized in [t, 2t) (default ${DEFAULT_CONFIG.electionTimeout})`,
  },
  "snapshot-threshold": {
    type: "string",
    arg: "N",
    help: `snapshot after N applied entries (default ${DEFAULT_CONFIG.snapshotThreshold})`,
  },
  "snapshot-interval": {
    type: "string",
    arg: "MS",
    help: `how often to check the threshold (default ${DEFAULT_CONFIG.snapshotInterval})`,
  },
  "trailing-logs": {
    type: "string",
    arg: "N",
    help: `entries kept behind a snapshot (default ${DEFAULT_CONFIG.trailingLogs})`,
  },
  "retain-snapshots": {
    type: "string",
    arg: "N",
    help: `snapshots kept on disk (default ${DEFAULT_CONFIG.retainSnapshots})`,
  },
  "log-cache-bytes": {
    type: "string",
    arg: "N",
    help: "bytes of recent entries the leader keeps in memory for followers; older ones " +
      `are read back from disk, 0 keeps none (default ${DEFAULT_CONFIG.logCacheBytes})`,
  },
  "log-level": {
    type: "string",
    arg: "LEVEL",
    help: "debug, info, warning or error (default info)",
  },
  "log-format": { type: "string", arg: "FORMAT", help: "text or json (default text)" },
  ...HELP_OPTION,
};

/** Help text of `raftd serve`. */
const SERVE_HELP: string = helpText(
  `${COMMAND} --id ID --data DIR [--raft HOST:PORT] [--http HOST:PORT] [--bootstrap | --join URL] [options]`,
  "Run a raftd node: a replicated key-value store with an HTTP API. Stops cleanly on\n" +
    "SIGINT/SIGTERM. Binds loopback unless told otherwise.",
  OPTIONS,
);

/**
 * The trimmed text of secret file `file` given by `flag`, refused (as a
 * {@linkcode CliError} naming `command`) when others can read it or it is empty.
 *
 * @example
 * ```ts ignore
 * import { readSecret } from "./serve.ts";
 * const token = await readSecret("--api-token-file", "/etc/raftd/token");
 * ```
 */
export async function readSecret(
  flag: string,
  file: string | undefined,
  command: string = COMMAND,
): Promise<string | undefined> {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = (await readSecretFile(file, flag)).trim();
  } catch (e) {
    if (e instanceof ExposedSecretError) throw new CliError(`${command}: ${e.message}`);
    throw new CliError(`${command}: cannot read ${flag} ${file}: ${(e as Error).message}`);
  }
  if (text === "") throw new CliError(`${command}: ${flag} ${file} is empty`);
  return text;
}

/**
 * Run `raftd serve` with `argv` (after the command name). Resolves when the
 * node has stopped.
 *
 * @example
 * ```ts ignore
 * import { serve } from "./serve.ts";
 * await serve(["--id", "n1", "--data", "./data/n1", "--bootstrap"]);
 * ```
 */
export async function serve(argv: string[]): Promise<number> {
  const p = parse(COMMAND, argv, OPTIONS, 0);
  if (bool(p, "help")) {
    writeStdout(SERVE_HELP);
    return 0;
  }
  const id = str(p, "id");
  const data = str(p, "data");
  if (id === undefined) {
    throw new UsageError(`${COMMAND}: --id is required (see ${COMMAND} --help)`);
  }
  if (data === undefined) {
    throw new UsageError(`${COMMAND}: --data is required (see ${COMMAND} --help)`);
  }
  if (bool(p, "bootstrap") && str(p, "join") !== undefined) {
    throw new UsageError(`${COMMAND}: --bootstrap and --join exclude each other`);
  }
  const ms = (name: string) => int(COMMAND, p, name, { min: 1 });
  const raft: DaemonRaftConfig = {};
  const set = <K extends keyof DaemonRaftConfig>(k: K, v: DaemonRaftConfig[K] | undefined) => {
    if (v !== undefined) raft[k] = v;
  };
  set("heartbeatInterval", ms("heartbeat-interval"));
  set("electionTimeout", ms("election-timeout"));
  set("snapshotThreshold", ms("snapshot-threshold"));
  set("snapshotInterval", int(COMMAND, p, "snapshot-interval"));
  set("trailingLogs", int(COMMAND, p, "trailing-logs"));
  set("retainSnapshots", ms("retain-snapshots"));
  set("logCacheBytes", int(COMMAND, p, "log-cache-bytes"));
  if (raft.heartbeatInterval !== undefined && raft.electionTimeout === undefined) {
    raft.electionTimeout = Math.max(DEFAULT_CONFIG.electionTimeout, raft.heartbeatInterval * 10);
  }
  await setupLogging(COMMAND, str(p, "log-level") ?? "info", str(p, "log-format") ?? "text");
  const token = await readSecret("--api-token-file", str(p, "api-token-file"));
  if (str(p, "join-token") !== undefined && str(p, "join-token-file") !== undefined) {
    throw new UsageError(`${COMMAND}: --join-token and --join-token-file exclude each other`);
  }
  const joinToken = str(p, "join-token") ??
    await readSecret("--join-token-file", str(p, "join-token-file"));
  if (joinToken !== undefined && str(p, "join") === undefined) {
    throw new UsageError(`${COMMAND}: --join-token needs --join URL (the member to ask)`);
  }
  const clusterKeyText = await readSecret("--cluster-key-file", str(p, "cluster-key-file"));
  const clusterKey = clusterKeyText === undefined
    ? undefined
    : new TextEncoder().encode(clusterKeyText);
  const tlsCert = str(p, "tls-cert");
  const tlsKey = str(p, "tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) {
    throw new UsageError(`${COMMAND}: --tls-cert and --tls-key go together`);
  }
  if (str(p, "tls-ca") !== undefined && tlsCert === undefined) {
    throw new UsageError(`${COMMAND}: --tls-ca needs --tls-cert and --tls-key`);
  }
  if (tlsCert !== undefined && str(p, "tls-ca") === undefined) {
    // TLS that does not check who dials would let any stranger in.
    throw new UsageError(
      `${COMMAND}: --tls-cert needs --tls-ca: peers are admitted only with a certificate ` +
        "that CA signed (mutual TLS)",
    );
  }
  // A private key others can read is refused like a key file or token.
  if (tlsKey !== undefined) await readSecret("--tls-key", tlsKey);
  const tls = tlsCert !== undefined && tlsKey !== undefined
    ? { certFile: tlsCert, keyFile: tlsKey, caFile: str(p, "tls-ca") }
    : undefined;
  const httpTls = {
    certFile: str(p, "http-tls-cert"),
    keyFile: str(p, "http-tls-key"),
    clientCaFile: str(p, "http-tls-client-ca"),
    caFile: str(p, "http-tls-ca"),
  };
  if ((httpTls.certFile === undefined) !== (httpTls.keyFile === undefined)) {
    throw new UsageError(`${COMMAND}: --http-tls-cert and --http-tls-key go together`);
  }
  if (httpTls.clientCaFile !== undefined && httpTls.certFile === undefined) {
    throw new UsageError(
      `${COMMAND}: --http-tls-client-ca needs --http-tls-cert and --http-tls-key`,
    );
  }
  if (httpTls.keyFile !== undefined) await readSecret("--http-tls-key", httpTls.keyFile);

  let daemon;
  try {
    daemon = await startDaemon({
      id,
      raftAddress: str(p, "raft") ?? "127.0.0.1:7001",
      httpAddress: str(p, "http") ?? "127.0.0.1:8001",
      advertiseRaft: str(p, "advertise-raft"),
      advertiseHttp: str(p, "advertise-http"),
      dataDir: data,
      bootstrap: bool(p, "bootstrap"),
      join: str(p, "join"),
      token,
      clusterKey,
      joinToken,
      insecure: bool(p, "insecure"),
      tls,
      httpTls,
      maxKeyBytes: ms("max-key-bytes"),
      maxValueBytes: ms("max-value-bytes"),
      timeoutMs: ms("request-timeout"),
      httpHeadTimeoutMs: ms("http-head-timeout"),
      raft,
      version: VERSION,
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new CliError(`${COMMAND}: cannot start: ${msg}`);
  }
  const d = daemon;
  if (d.joinToken !== undefined) {
    writeStdout(
      `${COMMAND}: made a cluster key and an API token in ${data} (cluster.key, api.token).\n` +
        "Other servers join with:\n" +
        `  raftd serve --id ID --raft HOST:PORT --http HOST:PORT --data DIR --join ${d.httpUrl} ` +
        `--join-token ${d.joinToken}\n` +
        `(raftd join-token --data ${data} prints the token again.)\n`,
    );
  }
  const off = onSignals(["SIGINT", "SIGTERM"], () => void d.stop());
  await d.stopped;
  off();
  if (d.failure !== undefined) throw new CliError(`${COMMAND}: ${d.failure}`);
  return 0;
}
