/**
 * Network failures get one wording whatever the runtime: Deno's error
 * classes, Node.js/Bun error codes and fetch's wrappers all map to the same
 * short reason.
 */

import assert from "node:assert/strict";
import { describeNetError } from "../../src/platform/net_errors.ts";

function nodeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

Deno.test("Deno and Node.js/Bun bind failures read the same", () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let denoError: unknown;
  try {
    Deno.listen({ hostname: "127.0.0.1", port });
  } catch (e) {
    denoError = e;
  } finally {
    listener.close();
  }
  assert.ok(denoError instanceof Deno.errors.AddrInUse);
  const bunError = nodeError("EADDRINUSE", `listen EADDRINUSE: address already in use :${port}`);
  assert.equal(describeNetError(denoError), "address already in use");
  assert.equal(describeNetError(bunError), "address already in use");
  assert.equal(
    describeNetError(new Deno.errors.AddrNotAvailable("Cannot assign requested address")),
    describeNetError(nodeError("EADDRNOTAVAIL", "EADDRNOTAVAIL: address not available")),
  );
});

Deno.test("connection failures read the same, including through fetch's wrappers", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  let fetchError: unknown;
  try {
    await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    fetchError = e;
  }
  // Deno: TypeError "fetch failed" caused by "... Connection refused (os error 111)".
  assert.equal(describeNetError(fetchError), "connection refused");
  // Bun's fetch: a TypeError with the code; node:net: an Error with the code.
  const bunFetch = Object.assign(new TypeError("Unable to connect."), { code: "ECONNREFUSED" });
  assert.equal(describeNetError(bunFetch), "connection refused");
  assert.equal(describeNetError(new Deno.errors.ConnectionRefused("x")), "connection refused");
  assert.equal(
    describeNetError(nodeError("ENOTFOUND", "getaddrinfo ENOTFOUND nowhere.invalid")),
    "host not found",
  );
  assert.equal(
    describeNetError(
      new TypeError("fetch failed", {
        cause: new Error("client error (Connect): dns error: failed to lookup address information"),
      }),
    ),
    "host not found",
  );
});

Deno.test("an unknown error keeps the first line of its message", () => {
  assert.equal(describeNetError(new Error("disk on fire\nstack...")), "disk on fire");
  assert.equal(describeNetError("plain text"), "plain text");
  // Keys of Object.prototype are not reasons.
  assert.equal(describeNetError(nodeError("constructor", "odd")), "odd");
});
