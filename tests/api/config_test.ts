/**
 * One source of defaults: `DEFAULT_CONFIG` is what validation fills in and
 * what `raftd serve --help` prints; validation shows values with their type;
 * a run-time reload refuses keys it cannot change.
 */

import assert from "node:assert/strict";
import { DEFAULT_CONFIG, validateConfig } from "../../mod.ts";
import { resolveReload } from "../../src/config.ts";
import { API_DEFAULTS } from "../../src/server/http_api.ts";

Deno.test("validateConfig fills in exactly DEFAULT_CONFIG", () => {
  const resolved = validateConfig({ id: "n1" });
  for (const [key, value] of Object.entries(DEFAULT_CONFIG)) {
    assert.equal(resolved[key as keyof typeof resolved], value, key);
  }
  assert.equal(resolved.leaderLeaseTimeout, Math.floor(DEFAULT_CONFIG.electionTimeout * 0.8));
  assert.ok(Object.isFrozen(DEFAULT_CONFIG));
});

Deno.test("an explicit undefined means the default", () => {
  const resolved = validateConfig({ id: "n1", heartbeatInterval: undefined, preVote: undefined });
  assert.equal(resolved.heartbeatInterval, DEFAULT_CONFIG.heartbeatInterval);
  assert.equal(resolved.preVote, DEFAULT_CONFIG.preVote);
});

Deno.test("raftd serve --help prints the defaults from DEFAULT_CONFIG and API_DEFAULTS", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../cli/main.ts", import.meta.url).pathname, "serve", "--help"],
    stdout: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assert.ok(out.success);
  const help = new TextDecoder().decode(out.stdout);
  for (
    const [flag, key] of [
      ["--heartbeat-interval", "heartbeatInterval"],
      ["--election-timeout", "electionTimeout"],
      ["--snapshot-threshold", "snapshotThreshold"],
      ["--snapshot-interval", "snapshotInterval"],
      ["--trailing-logs", "trailingLogs"],
      ["--retain-snapshots", "retainSnapshots"],
      ["--log-cache-bytes", "logCacheBytes"],
    ] as const
  ) {
    const line = help.split("\n").find((l) => l.includes(flag));
    assert.ok(line, `${flag} is in the help`);
    assert.match(line, new RegExp(`\\(default ${DEFAULT_CONFIG[key]}\\)`), line);
  }
  for (
    const [flag, key] of [
      ["--max-key-bytes", "maxKeyBytes"],
      ["--max-value-bytes", "maxValueBytes"],
      ["--request-timeout", "timeoutMs"],
    ] as const
  ) {
    const line = help.split("\n").find((l) => l.includes(flag));
    assert.ok(line, `${flag} is in the help`);
    assert.match(line, new RegExp(`\\(default ${API_DEFAULTS[key]}\\)`), line);
  }
});

Deno.test("validation messages show the value with its type", () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [
      { heartbeatInterval: "1500" },
      /^TypeError: config\.heartbeatInterval must be a positive integer, got string "1500"$/,
    ],
    [
      { electionTimeout: 1.5 },
      /^RangeError: config\.electionTimeout must be a positive integer, got number 1.5$/,
    ],
    [
      { snapshotInterval: -1 },
      /^RangeError: config\.snapshotInterval must be a non-negative integer, got number -1$/,
    ],
    [
      { maxAppendEntries: {} },
      /^TypeError: config\.maxAppendEntries must be a positive integer, got an object$/,
    ],
    [
      { logCacheBytes: -1 },
      /^RangeError: config\.logCacheBytes must be a non-negative integer, got number -1$/,
    ],
    [
      { logCacheBytes: Infinity },
      /^RangeError: config\.logCacheBytes must be a non-negative integer, got number Infinity$/,
    ],
    [{ preVote: "no" }, /^TypeError: config\.preVote must be a boolean, got string "no"$/],
    [{ random: 4 }, /^TypeError: config\.random must be a function, got number 4$/],
  ];
  for (const [fields, message] of cases) {
    assert.throws(() => validateConfig({ id: "n1", ...fields }), message);
  }
  assert.throws(
    () => validateConfig({ id: 7 as unknown as string }),
    /^TypeError: config\.id must be a non-empty string, got number 7$/,
  );
  assert.throws(
    () => validateConfig("n1" as never),
    /^TypeError: config must be an object, got string "n1"$/,
  );
});

Deno.test("resolveReload changes what may change and refuses the rest", () => {
  const current = validateConfig({ id: "n1" });
  const next = resolveReload(current, { snapshotThreshold: 100, electionTimeout: 2000 });
  assert.equal(next.snapshotThreshold, 100);
  assert.equal(next.electionTimeout, 2000);
  assert.equal(next.preVote, current.preVote);
  for (const key of ["preVote", "checkQuorum", "id", "maxAppendEntries", "heartbeatIntervall"]) {
    assert.throws(
      () => resolveReload(current, { [key]: 1 } as never),
      (e: Error) =>
        e instanceof TypeError &&
        e.message.startsWith(`reloadConfig: "${key}" cannot change while the node runs`) &&
        e.message.includes("expected one of heartbeatInterval, electionTimeout"),
    );
  }
  assert.throws(
    () => resolveReload(current, { heartbeatInterval: "50" } as never),
    /must be a positive integer, got string "50"/,
  );
  assert.throws(() => resolveReload(current, null as never), /changes must be an object, got null/);
  // An undefined value changes nothing.
  assert.equal(
    resolveReload(current, { trailingLogs: undefined }).trailingLogs,
    current.trailingLogs,
  );
});
