import { strict as assert } from "node:assert";
import { BearerAuth, constantTimeEqual } from "../../src/server/auth.ts";
import { readBody, readJsonObject } from "../../src/server/body.ts";
import { HttpError, toHttpError } from "../../src/server/errors.ts";
import {
  checkHostPort,
  checkKey,
  checkServerId,
  consistencyParam,
  decodePath,
  intParam,
  normalizeHttpUrl,
} from "../../src/server/validate.ts";
import {
  ConfigurationError,
  LeadershipLostError,
  NotLeaderError,
  ShutdownError,
  TimeoutError,
} from "../../src/errors.ts";
import { parse, UsageError } from "../../cli/args.ts";
import { keyPath } from "../../cli/client.ts";

function status(f: () => unknown): number {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof HttpError, `expected HttpError, got ${e}`);
    return e.status;
  }
  return 0;
}

Deno.test("bearer tokens compare exactly", () => {
  assert.equal(constantTimeEqual("abc", "abc"), true);
  assert.equal(constantTimeEqual("abc", "abd"), false);
  assert.equal(constantTimeEqual("abc", "ab"), false);
  assert.equal(constantTimeEqual("abc", ""), false);
  assert.equal(constantTimeEqual("abc", "abcd"), false);
  const auth = new BearerAuth(" s3cret\n");
  const req = (h?: string) => new Request("http://x/", { headers: h ? { authorization: h } : {} });
  assert.equal(auth.check(req("Bearer s3cret")), true);
  assert.equal(auth.check(req("bearer s3cret")), true);
  assert.equal(auth.check(req("Bearer s3cre")), false);
  assert.equal(auth.check(req("Basic s3cret")), false);
  assert.equal(auth.check(req()), false);
  assert.throws(() => new BearerAuth("  "), RangeError);
});

Deno.test("validation gives 4xx with what was expected", () => {
  assert.equal(status(() => checkKey("", 10)), 400);
  assert.equal(status(() => checkKey("x".repeat(11), 10)), 400);
  assert.equal(status(() => checkKey("ü".repeat(6), 10)), 400); // 12 bytes
  assert.equal(status(() => checkKey("ok/key", 10)), 0);
  assert.equal(status(() => checkKey("a\0b", 10)), 400);
  assert.equal(status(() => decodePath("%E0%A4%A")), 400);
  assert.equal(decodePath("a%2Fb%20c"), "a/b c");
  assert.equal(checkServerId("n-1.a_b", "id"), "n-1.a_b");
  assert.equal(status(() => checkServerId("", "id")), 400);
  assert.equal(status(() => checkServerId("a/b", "id")), 400);
  assert.equal(status(() => checkServerId(7, "id")), 400);
  assert.equal(checkHostPort("[::1]:7001", "raft"), "[::1]:7001");
  assert.equal(status(() => checkHostPort("localhost", "raft")), 400);
  assert.equal(status(() => checkHostPort("h:70000", "raft")), 400);
  assert.equal(normalizeHttpUrl("127.0.0.1:8001", "http"), "http://127.0.0.1:8001");
  assert.equal(normalizeHttpUrl("http://h:8001/", "http"), "http://h:8001");
  assert.equal(status(() => normalizeHttpUrl("http://h:8001/x", "http")), 400);
  assert.equal(status(() => normalizeHttpUrl("nonsense", "http")), 400);
  assert.equal(intParam(new URL("http://x/?cas=0"), "cas"), 0);
  assert.equal(intParam(new URL("http://x/"), "cas"), undefined);
  assert.equal(status(() => intParam(new URL("http://x/?cas=-1"), "cas")), 400);
  assert.equal(status(() => intParam(new URL("http://x/?cas=1e3"), "cas")), 400);
  assert.equal(consistencyParam(new URL("http://x/")), "linearizable");
  assert.equal(consistencyParam(new URL("http://x/?consistency=lease")), "lease");
  assert.equal(status(() => consistencyParam(new URL("http://x/?consistency=strong"))), 400);
});

Deno.test("bodies are read with a limit and JSON is checked", async () => {
  const put = (body: BodyInit, headers: Record<string, string> = {}) =>
    new Request("http://x/", { method: "PUT", body, headers });
  assert.equal((await readBody(put("12345"), 5)).length, 5);
  await assert.rejects(
    readBody(put("123456"), 5),
    (e) => e instanceof HttpError && e.status === 413,
  );
  await assert.rejects(
    readBody(put("1", { "content-length": "999" }), 5),
    (e) => e instanceof HttpError && e.status === 413,
  );
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(3));
      c.close();
    },
  });
  await assert.rejects(
    readBody(put(stream), 20),
    (e) => e instanceof HttpError && e.status === 413,
  );
  assert.deepEqual(await readJsonObject(put('{"a":1}')), { a: 1 });
  assert.deepEqual(await readJsonObject(put(""), true), {});
  for (const bad of ["", "{", "[1]", "null", '"x"', "\xff"]) {
    await assert.rejects(
      readJsonObject(put(bad)),
      (e) => e instanceof HttpError && e.status === 400,
      `body ${JSON.stringify(bad)}`,
    );
  }
});

Deno.test("Raft errors map to fitting statuses", () => {
  const leader = { id: "n2", raft: "h:7002", http: "http://h:8002" };
  const nl = toHttpError(new NotLeaderError(undefined), leader);
  assert.equal(nl.status, 503);
  assert.equal(nl.headers["retry-after"], "1");
  assert.deepEqual(nl.fields.leader, leader);
  const lost = toHttpError(new LeadershipLostError("unknown"));
  assert.equal(lost.status, 503);
  assert.equal(lost.fields.outcome, "unknown");
  assert.equal(toHttpError(new TimeoutError("apply", 10)).status, 504);
  assert.equal(toHttpError(new ConfigurationError("busy")).status, 409);
  assert.equal(toHttpError(new ShutdownError()).status, 503);
  assert.equal(toHttpError(new RangeError("bad")).status, 400);
  assert.equal(toHttpError(new Error("boom")).status, 500);
});

Deno.test("CLI arguments are parsed strictly with one-line errors", () => {
  const opts = {
    id: { type: "string" as const, help: "" },
    json: { type: "boolean" as const, help: "" },
  };
  const p = parse("raftd x", ["--id", "n1", "--json", "pos"], opts, 1);
  assert.equal(p.values.id, "n1");
  assert.equal(p.values.json, true);
  assert.deepEqual(p.positionals, ["pos"]);
  assert.throws(() => parse("raftd x", ["--nope"], opts, 0), (e) => {
    assert.ok(e instanceof UsageError);
    assert.match(e.message, /^raftd x: Unknown option '--nope'/);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  assert.throws(() => parse("raftd x", ["--id"], opts, 0), /raftd x: option --id needs a value/);
  assert.throws(() => parse("raftd x", ["a", "b"], opts, 1), /unexpected argument "b"/);
  assert.equal(keyPath("a/b c"), "/v1/kv/a%2Fb%20c");
});

Deno.test("readBody: a body that stalls mid-upload gets 408 instead of holding the request", async () => {
  let cancelled = false;
  const stalled = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([1, 2, 3]));
      // ...and nothing more, ever.
    },
    cancel() {
      cancelled = true;
    },
  });
  const req = new Request("http://x/v1/kv/a", { method: "PUT", body: stalled });
  await assert.rejects(
    () => readBody(req, 1024, "value", 50),
    (e: unknown) => e instanceof HttpError && e.status === 408 && /within 50 ms/.test(e.message),
  );
  assert.ok(cancelled, "the upload stream is cancelled");
  // A body that arrives in time is read whole.
  const ok = new Request("http://x/v1/kv/a", { method: "PUT", body: "hello" });
  assert.equal(new TextDecoder().decode(await readBody(ok, 1024, "value", 50)), "hello");
});
