/**
 * Checks of what a caller hands the public node API: ids, addresses,
 * options, the FSM and the stores. Each failure is a `TypeError` or
 * `RangeError` that says what was expected and what was given.
 *
 * @module
 */

import { checkConfiguration } from "../core/membership.ts";
import type { Configuration } from "../core/types.ts";
import { describeValue } from "../describe_value.ts";
import type { FSM } from "../fsm.ts";
import type { AddServerOptions, CreateOptions, RaftStores } from "./types.ts";

/**
 * A short name of a value's type for messages: `null`, `array`, a class
 * name, or `typeof`.
 *
 * @example
 * ```ts
 * import { typeOf } from "./arguments.ts";
 * console.log(typeOf(null), typeOf([1]), typeOf(new Date(0)), typeOf(1)); // null array Date number
 * ```
 */
export function typeOf(value: unknown): string {
  return value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : typeof value === "object"
    ? (value as object).constructor?.name ?? "object"
    : typeof value;
}

/**
 * Throw a `TypeError` naming `what` unless `value` is a non-empty string.
 *
 * @example
 * ```ts
 * import { checkId } from "./arguments.ts";
 * checkId("n1", "addVoter: id"); // fine
 * try {
 *   checkId("", "addVoter: id");
 * } catch (e) {
 *   console.log((e as TypeError).message); // addVoter: id must be a non-empty string, got ""
 * }
 * ```
 */
export function checkId(value: unknown, what: string): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new TypeError(`${what} must be a non-empty string, got ${describeValue(value)}`);
  }
}

/**
 * `options.updateAddress` of `op` as a boolean (absent: `false`).
 *
 * @example
 * ```ts
 * import { checkUpdateAddress } from "./arguments.ts";
 * console.log(checkUpdateAddress({ updateAddress: true }, "addVoter")); // true
 * console.log(checkUpdateAddress(undefined, "addVoter")); // false
 * ```
 */
export function checkUpdateAddress(options: AddServerOptions | undefined, op: string): boolean {
  const v = options?.updateAddress;
  if (v !== undefined && typeof v !== "boolean") {
    throw new TypeError(`${op}: options.updateAddress must be a boolean, got ${typeOf(v)}`);
  }
  return v === true;
}

/**
 * `options.prevIndex` of a membership change `op` (absent: 0, any index).
 *
 * @example
 * ```ts
 * import { checkPrevIndex } from "./arguments.ts";
 * console.log(checkPrevIndex(undefined, "removeServer"), checkPrevIndex(7, "removeServer")); // 0 7
 * ```
 */
export function checkPrevIndex(prevIndex: number | undefined, op: string): number {
  const value = prevIndex ?? 0;
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`${op}: options.prevIndex must be a non-negative integer, got ${value}`);
  }
  return value;
}

/**
 * Throw a `TypeError` unless `fsm` has `apply`, `snapshot` and `restore`.
 *
 * @example
 * ```ts
 * import { checkFsm } from "./arguments.ts";
 * import { RecordingFSM } from "../testing/recording_fsm.ts";
 * checkFsm(new RecordingFSM()); // fine
 * try {
 *   checkFsm({} as RecordingFSM);
 * } catch (e) {
 *   console.log((e as TypeError).message); // fsm must implement apply(entry), snapshot() and restore(data)
 * }
 * ```
 */
export function checkFsm<R>(fsm: FSM<R>): void {
  if (
    !fsm || typeof fsm.apply !== "function" || typeof fsm.snapshot !== "function" ||
    typeof fsm.restore !== "function"
  ) {
    throw new TypeError("fsm must implement apply(entry), snapshot() and restore(data)");
  }
}

/**
 * Throw a `TypeError` unless `stores` has the three stores and the
 * transport, and `stores.clock`, when given, implements `Clock`.
 *
 * @example
 * ```ts
 * import { checkStores } from "./arguments.ts";
 * import type { RaftStores } from "./types.ts";
 * try {
 *   checkStores({} as RaftStores);
 * } catch (e) {
 *   console.log((e as TypeError).message); // stores.logStore is required
 * }
 * ```
 */
export function checkStores(stores: RaftStores): void {
  for (const key of ["logStore", "stableStore", "snapshotStore", "transport"] as const) {
    if (!stores || !stores[key]) throw new TypeError(`stores.${key} is required`);
  }
  const clock = stores.clock as Partial<Record<string, unknown>> | null | undefined;
  if (clock === undefined) return;
  const methods = ["now", "wallClock", "setTimeout", "clearTimeout", "queueTask", "close"];
  if (
    typeof clock !== "object" || clock === null ||
    !methods.every((k) => typeof clock[k] === "function")
  ) {
    throw new TypeError(
      `stores.clock must implement Clock (${methods.join(", ")}), got ${typeOf(stores.clock)}`,
    );
  }
}

/**
 * Check the options of `Raft.create`; returns the bootstrap configuration,
 * checked, if one was given.
 *
 * @throws {TypeError} when `options` is not an object or its configuration is malformed.
 * @throws {ConfigurationError} when the configuration has no voter or repeats a server.
 *
 * @example
 * ```ts
 * import { checkCreateOptions } from "./arguments.ts";
 * const conf = checkCreateOptions({ bootstrap: { servers: [{ id: "n1", address: "a", suffrage: "voter" }] } });
 * console.log(conf?.servers[0].id); // n1
 * ```
 */
export function checkCreateOptions(options: CreateOptions | undefined): Configuration | undefined {
  if (options === undefined) return undefined;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`create options must be an object, got ${typeOf(options)}`);
  }
  if (options.bootstrap === undefined) return undefined;
  return checkConfiguration(options.bootstrap);
}
