/**
 * Network failures read the same on every runtime. Deno throws
 * `Deno.errors.AddrInUse` ("Address already in use (os error 98)") and wraps
 * fetch failures in "fetch failed"; Node.js and Bun use `EADDRINUSE`-style
 * codes with their own wording. {@linkcode describeNetError} turns any of
 * them into one short reason.
 *
 * @module
 */

/** Reasons by Deno error class name and by Node.js/Bun error code. */
const REASONS: Record<string, string> = {
  AddrInUse: "address already in use",
  EADDRINUSE: "address already in use",
  AddrNotAvailable: "address not available on this host",
  EADDRNOTAVAIL: "address not available on this host",
  PermissionDenied: "permission denied",
  EACCES: "permission denied",
  EPERM: "permission denied",
  ConnectionRefused: "connection refused",
  ECONNREFUSED: "connection refused",
  ConnectionReset: "connection reset by the peer",
  ECONNRESET: "connection reset by the peer",
  ConnectionAborted: "connection aborted",
  ECONNABORTED: "connection aborted",
  TimedOut: "connection timed out",
  ETIMEDOUT: "connection timed out",
  TimeoutError: "no answer in time",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found (name resolution failed)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
};

/** The same reasons, recognized in message text (Deno's fetch hides the class in its cause's text). */
const PATTERNS: Array<[RegExp, string]> = [
  [/address already in use/i, REASONS.EADDRINUSE],
  [/cannot assign requested address|address not available/i, REASONS.EADDRNOTAVAIL],
  [/connection refused/i, REASONS.ECONNREFUSED],
  [/connection reset/i, REASONS.ECONNRESET],
  [/dns error|name or service not known|failed to lookup address|getaddrinfo/i, REASONS.ENOTFOUND],
  [/no route to host|host is unreachable/i, REASONS.EHOSTUNREACH],
  [/network is unreachable/i, REASONS.ENETUNREACH],
  [/permission denied/i, REASONS.EACCES],
  [/timed out/i, REASONS.ETIMEDOUT],
];

/** How many `cause` links to follow before giving up. */
const MAX_CAUSES = 5;

/**
 * One short, runtime-independent reason for a network failure: `"address
 * already in use"`, `"connection refused"`, `"host not found"`, … Follows the
 * `cause` chain; an error it does not recognize gives the first line of its
 * message.
 *
 * @example
 * ```ts
 * import { describeNetError } from "./net_errors.ts";
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * try {
 *   Deno.listen({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port });
 * } catch (e) {
 *   console.log(describeNetError(e)); // "address already in use"
 * }
 * listener.close();
 * ```
 */
export function describeNetError(error: unknown): string {
  let e: unknown = error;
  for (let depth = 0; depth <= MAX_CAUSES && e !== undefined && e !== null; depth++) {
    const known = recognize(e);
    if (known !== undefined) return known;
    e = (e as { cause?: unknown }).cause;
  }
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0];
}

function recognize(e: unknown): string | undefined {
  if (typeof e !== "object") return undefined;
  const { name, code, message } = e as { name?: unknown; code?: unknown; message?: unknown };
  if (typeof code === "string" && Object.hasOwn(REASONS, code)) return REASONS[code];
  if (typeof name === "string" && Object.hasOwn(REASONS, name)) return REASONS[name];
  if (typeof message === "string") {
    for (const [pattern, reason] of PATTERNS) if (pattern.test(message)) return reason;
  }
  return undefined;
}
