/**
 * Prometheus text exposition of a node's Raft statistics and HTTP counters.
 *
 * @module
 */

import type { Histogram } from "../metrics.ts";
import type { RaftStats } from "../raft.ts";

/**
 * Counters of the HTTP API, by route and status code.
 *
 * @example
 * ```ts
 * import { HttpMetrics } from "./metrics.ts";
 * const m = new HttpMetrics();
 * m.count("kv_put", 200);
 * console.log(m.requests.get("kv_put 200")); // 1
 * ```
 */
export class HttpMetrics {
  /** `"<route> <status>"` → requests answered. */
  readonly requests: Map<string, number> = new Map();
  /** Requests forwarded to the leader. */
  forwarded = 0;
  /** Forwarding attempts that failed (leader unreachable). */
  forwardErrors = 0;
  /** Requests being served now. */
  inFlight = 0;

  /** Count one answered request. */
  count(route: string, status: number): void {
    const key = `${route} ${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }
}

/**
 * Extra gauges the daemon knows beside Raft's statistics.
 *
 * @example
 * ```ts
 * import type { ServerGauges } from "./metrics.ts";
 * const gauges: ServerGauges = { keys: 42 };
 * ```
 */
export interface ServerGauges {
  /** Keys in the KV store. */
  keys: number;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

class Writer {
  lines: string[] = [];
  metric(name: string, type: "gauge" | "counter" | "histogram", help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, value: number, labels?: Record<string, string>): void {
    const l = labels && Object.keys(labels).length > 0
      ? `{${Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
      : "";
    this.lines.push(`${name}${l} ${Number.isFinite(value) ? value : 0}`);
  }
  gauge(name: string, help: string, value: number): void {
    this.metric(name, "gauge", help);
    this.sample(name, value);
  }
  counter(name: string, help: string, value: number): void {
    this.metric(name, "counter", help);
    this.sample(name, value);
  }
  histogram(name: string, help: string, h: Histogram): void {
    this.metric(name, "histogram", help);
    for (let i = 0; i < h.buckets.length; i++) {
      this.sample(`${name}_bucket`, h.counts[i] ?? 0, { le: String(h.buckets[i]) });
    }
    this.sample(`${name}_bucket`, h.count, { le: "+Inf" });
    this.sample(`${name}_sum`, h.sum);
    this.sample(`${name}_count`, h.count);
  }
}

const STATES = ["follower", "candidate", "leader", "shutdown"] as const;

/**
 * Render the Prometheus text format (version 0.0.4).
 *
 * @example
 * ```ts ignore
 * import { HttpMetrics, renderMetrics } from "./metrics.ts";
 * const text = renderMetrics(raft.stats(), new HttpMetrics(), { keys: 0 });
 * ```
 */
export function renderMetrics(stats: RaftStats, http: HttpMetrics, gauges: ServerGauges): string {
  const w = new Writer();
  w.metric("raftd_server_info", "gauge", "Always 1; the label names this server.");
  w.sample("raftd_server_info", 1, { id: stats.id });
  w.metric(
    "raftd_leader_info",
    "gauge",
    "1 for the server this node knows as leader (no sample while it knows none).",
  );
  if (stats.leaderId !== undefined) w.sample("raftd_leader_info", 1, { id: stats.leaderId });
  w.gauge("raftd_term", "Current Raft term.", stats.term);
  w.metric("raftd_state", "gauge", "1 for the node's current Raft state, 0 for the others.");
  for (const s of STATES) w.sample("raftd_state", stats.state === s ? 1 : 0, { state: s });
  w.gauge("raftd_is_leader", "1 when this node is the leader.", stats.state === "leader" ? 1 : 0);
  w.gauge("raftd_commit_index", "Highest log index known to be committed.", stats.commitIndex);
  w.gauge(
    "raftd_applied_index",
    "Highest log index applied to the state machine.",
    stats.appliedIndex,
  );
  w.gauge("raftd_last_log_index", "Index of the last entry in the log.", stats.lastLogIndex);
  w.gauge("raftd_last_log_term", "Term of the last entry in the log.", stats.lastLogTerm);
  w.gauge(
    "raftd_last_snapshot_index",
    "Index covered by the newest snapshot.",
    stats.lastSnapshotIndex,
  );
  w.gauge("raftd_last_snapshot_term", "Term of the newest snapshot.", stats.lastSnapshotTerm);
  w.gauge("raftd_last_snapshot_size_bytes", "Size of the newest snapshot.", stats.lastSnapshotSize);
  w.gauge(
    "raftd_last_contact_seconds",
    "Seconds since the last contact with the leader (0 on the leader, -1 when never).",
    stats.lastContactMs === undefined ? -1 : stats.lastContactMs / 1000,
  );
  w.gauge("raftd_peers", "Other servers in the configuration.", stats.numPeers);
  w.gauge(
    "raftd_configuration_index",
    "Log index of the latest configuration.",
    stats.configurationIndex,
  );
  w.counter("raftd_fsyncs_total", "Log appends made durable (one fsync per batch).", stats.fsyncs);
  w.histogram("raftd_store_logs_seconds", "Log append + fsync latency.", stats.storeLogsSeconds);
  w.histogram("raftd_fsm_apply_seconds", "State machine apply batch latency.", stats.applySeconds);
  w.histogram(
    "raftd_commit_seconds",
    "apply() call to commit latency on the leader.",
    stats.commitSeconds,
  );
  w.metric("raftd_rpc_sent_total", "counter", "Raft messages sent, by type.");
  for (const [type, n] of Object.entries(stats.messagesSent)) {
    w.sample("raftd_rpc_sent_total", n, { type });
  }
  w.metric("raftd_rpc_received_total", "counter", "Raft messages received, by type.");
  for (const [type, n] of Object.entries(stats.messagesReceived)) {
    w.sample("raftd_rpc_received_total", n, { type });
  }
  w.counter("raftd_snapshots_taken_total", "Snapshots taken by this node.", stats.snapshotsTaken);
  w.counter(
    "raftd_snapshots_installed_total",
    "Snapshots installed from a leader.",
    stats.snapshotsInstalled,
  );
  w.gauge(
    "raftd_log_entries_in_memory",
    "Log entries held in memory (not yet durable, or in the log cache).",
    stats.logEntriesInMemory,
  );
  w.gauge(
    "raftd_log_bytes_in_memory",
    "Bytes of those entries as the log cache counts them (data plus a fixed overhead each).",
    stats.logBytesInMemory,
  );
  w.counter(
    "raftd_log_reads_total",
    "Reads of older entries from the log store (for lagging followers or the FSM).",
    stats.logReads,
  );
  w.counter(
    "raftd_log_entries_read_total",
    "Entries those log store reads returned.",
    stats.logEntriesRead,
  );
  w.gauge("raftd_kv_keys", "Keys in the key-value store.", gauges.keys);
  w.metric(
    "raftd_http_requests_total",
    "counter",
    "HTTP API requests answered, by route and status.",
  );
  for (const [key, n] of http.requests) {
    const [route, code] = key.split(" ");
    w.sample("raftd_http_requests_total", n, { route, code });
  }
  w.counter("raftd_http_forwarded_total", "Requests forwarded to the leader.", http.forwarded);
  w.counter(
    "raftd_http_forward_errors_total",
    "Forwarded requests that failed to reach the leader.",
    http.forwardErrors,
  );
  w.gauge("raftd_http_in_flight", "HTTP requests being served.", http.inFlight);
  return w.lines.join("\n") + "\n";
}
