/**
 * `Config.logger`: the node reports what it does to the logger it is given,
 * and is silent by default; a logger without the four levels is refused.
 */

import assert from "node:assert/strict";
import { type Logger, type Raft, validateConfig } from "../../mod.ts";
import { formCluster } from "../../testing.ts";

interface Line {
  level: string;
  message: string;
  properties: Record<string, unknown>;
}

function recordingLogger(lines: Line[]): Logger {
  const at = (level: string) => (message: string, properties: Record<string, unknown> = {}) =>
    void lines.push({ level, message, properties });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

Deno.test("the node reports elections and snapshots to config.logger", async () => {
  const lines: Line[] = [];
  const cluster = await formCluster({ size: 1, config: { logger: recordingLogger(lines) } });
  try {
    const raft = cluster.leader()!;
    await raft.apply(new Uint8Array([1]));
    await raft.snapshot();
  } finally {
    await cluster.shutdown();
  }
  const messages = lines.map((l) => l.message);
  assert.ok(messages.some((m) => m.startsWith("raft {id} started")), messages.join("\n"));
  assert.ok(
    lines.some((l) =>
      l.message === "{id} is now {state} in term {term}" &&
      l.properties.state === "leader"
    ),
    messages.join("\n"),
  );
  assert.ok(messages.some((m) => m.startsWith("snapshot taken at {index}")), messages.join("\n"));
});

Deno.test("a logger without the four levels is refused, naming what is missing", () => {
  assert.throws(
    () => validateConfig({ id: "n1", logger: { info() {}, warn() {} } as unknown as Logger }),
    /^TypeError: config\.logger must have the methods debug, info, warn, error, got an object without debug, error$/,
  );
  assert.throws(
    () => validateConfig({ id: "n1", logger: "console" as unknown as Logger }),
    /^TypeError: config\.logger must have the methods debug, info, warn, error, got string "console"$/,
  );
});

Deno.test("reloadConfig on a running node refuses keys it cannot change", async () => {
  await using cluster = await formCluster({ size: 1 });
  const raft: Raft<number> = cluster.leader()!;
  assert.throws(
    () => raft.reloadConfig({ preVote: false } as never),
    /^TypeError: reloadConfig: "preVote" cannot change while the node runs; expected one of /,
  );
  assert.throws(
    () => raft.reloadConfig({ heartbeatInterval: "50" } as never),
    /^TypeError: config\.heartbeatInterval must be a positive integer, got string "50"$/,
  );
  raft.reloadConfig({ snapshotThreshold: 1 });
  const { index } = await raft.apply(new Uint8Array([1]));
  // With a threshold of one entry the node snapshots on its own.
  await cluster.waitFor("an automatic snapshot", () => raft.lastSnapshotIndex >= index);
});
