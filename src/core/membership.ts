/**
 * Cluster membership: encoding configurations into log entries, applying
 * one-server-at-a-time changes (hashicorp semantics), and quorum arithmetic.
 *
 * @module
 */

import type { Configuration, Server, ServerAddress, ServerId, Suffrage } from "./types.ts";
import { describeValue } from "../describe_value.ts";

/**
 * A single membership change, applied to the latest configuration.
 *
 * - `addVoter`: a new server joins as `staging` and is promoted once caught up;
 *   an existing non-voter becomes `staging` too.
 * - `addNonvoter`: joins (or stays) as non-voter.
 *
 * Adding a server at an address another server has is refused, and so is
 * re-adding an existing server at another address unless `updateAddress`
 * says that is meant (hashicorp/raft moves it silently, which turns a typo or
 * a second machine reusing an id into a lost member).
 * - `promote`: staging or non-voter becomes voter (issued by the leader once caught up).
 * - `demote`: a voter becomes a non-voter.
 * - `remove`: the server leaves.
 */
export type ConfigurationChange =
  | { op: "addVoter"; id: ServerId; address: ServerAddress; updateAddress?: boolean }
  | { op: "addNonvoter"; id: ServerId; address: ServerAddress; updateAddress?: boolean }
  | { op: "promote"; id: ServerId }
  | { op: "demote"; id: ServerId }
  | { op: "remove"; id: ServerId };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const SUFFRAGES: ReadonlySet<string> = new Set(["voter", "nonvoter", "staging"]);

/**
 * Serialize a configuration for a log entry or a snapshot.
 *
 * @example
 * ```ts
 * import { decodeConfiguration, encodeConfiguration } from "./membership.ts";
 * const bytes = encodeConfiguration({ servers: [{ id: "a", address: "x:1", suffrage: "voter" }] });
 * console.log(decodeConfiguration(bytes).servers[0].id); // "a"
 * ```
 */
export function encodeConfiguration(configuration: Configuration): Uint8Array {
  return encoder.encode(JSON.stringify({
    servers: configuration.servers.map((s) => ({
      id: s.id,
      address: s.address,
      suffrage: s.suffrage,
    })),
  }));
}

/**
 * Parse a configuration written by {@linkcode encodeConfiguration}; throws a
 * `TypeError` describing what is malformed.
 *
 * @example
 * ```ts
 * import { decodeConfiguration } from "./membership.ts";
 * const c = decodeConfiguration(new TextEncoder().encode('{"servers":[]}'));
 * console.log(c.servers.length); // 0
 * ```
 */
export function decodeConfiguration(bytes: Uint8Array): Configuration {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (e) {
    throw new TypeError(`configuration entry is not valid JSON: ${(e as Error).message}`);
  }
  return checkConfiguration(parsed);
}

/**
 * Check that a value is a well-formed configuration: an object with a
 * `servers` array of `{id, address, suffrage}` with unique ids.
 *
 * @example
 * ```ts
 * import { checkConfiguration } from "./membership.ts";
 * checkConfiguration({ servers: [{ id: "n1", address: "127.0.0.1:7001", suffrage: "voter" }] });
 * ```
 */
export function checkConfiguration(value: unknown): Configuration {
  if (
    value === null || typeof value !== "object" || !Array.isArray((value as Configuration).servers)
  ) {
    throw new TypeError("configuration must be an object with a servers array");
  }
  const seen = new Set<string>();
  const servers: Server[] = [];
  for (const [i, s] of (value as { servers: unknown[] }).servers.entries()) {
    if (s === null || typeof s !== "object") {
      throw new TypeError(`configuration.servers[${i}] must be an object, got ${describeValue(s)}`);
    }
    const { id, address, suffrage } = s as Record<string, unknown>;
    if (typeof id !== "string" || id.length === 0) {
      throw new TypeError(`configuration.servers[${i}].id must be a non-empty string`);
    }
    if (typeof address !== "string" || address.length === 0) {
      throw new TypeError(`configuration.servers[${i}].address must be a non-empty string`);
    }
    if (typeof suffrage !== "string" || !SUFFRAGES.has(suffrage)) {
      throw new TypeError(
        `configuration.servers[${i}].suffrage must be voter, nonvoter or staging, got ${
          JSON.stringify(suffrage)
        }`,
      );
    }
    if (seen.has(id)) throw new TypeError(`configuration lists server ${id} twice`);
    seen.add(id);
    servers.push({ id, address, suffrage: suffrage as Suffrage });
  }
  return { servers };
}

/**
 * Apply `change` to `current`; throws a `TypeError` for a change that makes no
 * sense (unknown server, removing the last voter).
 *
 * @example
 * ```ts
 * import { applyChange } from "./membership.ts";
 * const current = { servers: [{ id: "n1", address: "h:1", suffrage: "voter" as const }] };
 * const next = applyChange(current, { op: "addNonvoter", id: "n2", address: "h:2" });
 * console.log(next.servers[1].suffrage); // "nonvoter"
 * ```
 */
export function applyChange(current: Configuration, change: ConfigurationChange): Configuration {
  const servers = current.servers.map((s) => ({ ...s }));
  const existing = servers.find((s) => s.id === change.id);
  if (change.op === "addVoter" || change.op === "addNonvoter") {
    const holder = servers.find((s) => s.address === change.address && s.id !== change.id);
    if (holder) {
      throw new TypeError(
        `cannot add ${change.id} at ${change.address}: server ${holder.id} has that address`,
      );
    }
    if (existing && existing.address !== change.address && change.updateAddress !== true) {
      throw new TypeError(
        `server ${change.id} is already in the configuration at ${existing.address}, not ` +
          `${change.address}; pass updateAddress to move it, or remove it first`,
      );
    }
  }
  switch (change.op) {
    case "addVoter":
      if (existing) {
        existing.address = change.address;
        if (existing.suffrage === "nonvoter") existing.suffrage = "staging";
      } else {
        servers.push({ id: change.id, address: change.address, suffrage: "staging" });
      }
      break;
    case "addNonvoter":
      if (existing) {
        existing.address = change.address;
      } else {
        servers.push({ id: change.id, address: change.address, suffrage: "nonvoter" });
      }
      break;
    case "promote":
      if (!existing) throw new TypeError(`cannot promote ${change.id}: not in the configuration`);
      existing.suffrage = "voter";
      break;
    case "demote":
      if (!existing) throw new TypeError(`cannot demote ${change.id}: not in the configuration`);
      existing.suffrage = "nonvoter";
      break;
    case "remove": {
      if (!existing) throw new TypeError(`cannot remove ${change.id}: not in the configuration`);
      servers.splice(servers.indexOf(existing), 1);
      break;
    }
  }
  if (!servers.some((s) => s.suffrage === "voter")) {
    throw new TypeError(`${change.op} ${change.id} would leave the cluster with no voter`);
  }
  return { servers };
}

/**
 * Check a configuration a cluster is being started from (bootstrap,
 * recovery): it must list server `self`, a voter, and no address twice.
 * Throws a `TypeError` saying which rule it breaks. (Configurations already
 * in a log are not held to this: they were accepted when written.)
 *
 * @example
 * ```ts
 * import { checkStartingConfiguration } from "./membership.ts";
 * checkStartingConfiguration({ servers: [{ id: "n1", address: "h:1", suffrage: "voter" }] }, "n1");
 * ```
 */
export function checkStartingConfiguration(configuration: Configuration, self: ServerId): void {
  const ids = configuration.servers.map((s) => s.id);
  if (!ids.includes(self)) {
    throw new TypeError(
      `the configuration must contain this server (${self}); it lists ${
        ids.length === 0 ? "no server" : ids.join(", ")
      }`,
    );
  }
  if (!configuration.servers.some((s) => s.suffrage === "voter")) {
    throw new TypeError("the configuration must contain at least one voter");
  }
  const byAddress = new Map<string, ServerId>();
  for (const s of configuration.servers) {
    const other = byAddress.get(s.address);
    if (other !== undefined) {
      throw new TypeError(
        `the configuration gives servers ${other} and ${s.id} the same address ${s.address}`,
      );
    }
    byAddress.set(s.address, s.id);
  }
}

/**
 * Whether `id` is a voter in `configuration`.
 *
 * @example
 * ```ts
 * import { isVoter } from "./membership.ts";
 * console.log(isVoter({ servers: [{ id: "a", address: "x", suffrage: "voter" }] }, "a")); // true
 * ```
 */
export function isVoter(configuration: Configuration, id: ServerId): boolean {
  return configuration.servers.some((s) => s.id === id && s.suffrage === "voter");
}

/**
 * The voters' ids.
 *
 * @example
 * ```ts
 * import { voterIds } from "./membership.ts";
 * console.log(voterIds({ servers: [{ id: "a", address: "x", suffrage: "nonvoter" }] })); // []
 * ```
 */
export function voterIds(configuration: Configuration): ServerId[] {
  return configuration.servers.filter((s) => s.suffrage === "voter").map((s) => s.id);
}

/**
 * The value held by a quorum: the quorum-th highest of `values` (one per voter).
 * With `values = [9, 7, 3]` a majority (2) has at least 7.
 *
 * @example
 * ```ts
 * import { quorumValue } from "./membership.ts";
 * console.log(quorumValue([9, 7, 3])); // 7
 * ```
 */
export function quorumValue(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => b - a);
  return sorted[Math.floor(values.length / 2)];
}

/**
 * Deep copy of a configuration, so callers cannot mutate the core's state.
 *
 * @example
 * ```ts
 * import { cloneConfiguration } from "./membership.ts";
 * const c = cloneConfiguration({ servers: [] });
 * ```
 */
export function cloneConfiguration(configuration: Configuration): Configuration {
  return { servers: configuration.servers.map((s) => ({ ...s })) };
}
