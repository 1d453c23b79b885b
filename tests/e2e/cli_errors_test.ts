/**
 * Failures to reach or bind an address read the same from the source on
 * Deno, from the source on Bun and from the compiled binary: one line, the
 * same words, whatever each runtime's own error says.
 */

import assert from "node:assert/strict";
import { bunRunnable, runUnderBun } from "../_bun.ts";
import { cli, e2eTest, freePort } from "./helpers.ts";

/** The command lines to compare and the one line each must print. */
function cases(): Array<{ args: string[]; code: number; stderr: string; cleanup?: () => void }> {
  const closed = freePort();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const takenPort = (taken.addr as Deno.NetAddr).port;
  return [
    {
      args: ["status", "--server", `http://127.0.0.1:${closed}`],
      code: 1,
      stderr: `error: cannot reach raftd at http://127.0.0.1:${closed}: ` +
        "connection refused (is raftd running there?)\n",
    },
    {
      args: ["kv", "get", "k", "--server", "http://no-such-host.invalid:8001"],
      code: 1,
      stderr: "error: cannot reach raftd at http://no-such-host.invalid:8001: host not found\n",
    },
    {
      args: ["serve", "--id", "n1", "--data", "DATA", "--raft", `127.0.0.1:${takenPort}`],
      code: 1,
      stderr: `error: raftd serve: cannot start: cannot listen on --raft 127.0.0.1:${takenPort}: ` +
        "address already in use\n",
      cleanup: () => taken.close(),
    },
  ];
}

async function withDataDir<T>(args: string[], f: (args: string[]) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "raftd-cli-errors-" });
  try {
    return await f(args.map((a) => a === "DATA" ? `${dir}/data` : a));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

e2eTest("unreachable servers and taken ports read the same on every runtime", async () => {
  const all = cases();
  try {
    for (const c of all) {
      const r = await withDataDir(c.args, (args) => cli(args));
      assert.equal(r.stderr, c.stderr, c.args.join(" "));
      assert.equal(r.code, c.code, c.args.join(" "));
    }
  } finally {
    for (const c of all) c.cleanup?.();
  }
});

const bun = await bunRunnable();

Deno.test({
  name: "unreachable servers and taken ports read the same on Bun from source",
  ignore: !bun,
  async fn() {
    const all = cases();
    try {
      for (const c of all) {
        const r = await withDataDir(c.args, (args) => runUnderBun("cli/main.ts", args));
        assert.equal(r.stderr, c.stderr, c.args.join(" "));
        assert.equal(r.code, c.code, c.args.join(" "));
      }
    } finally {
      for (const c of all) c.cleanup?.();
    }
  },
});
