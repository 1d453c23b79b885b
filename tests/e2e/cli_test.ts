/**
 * End-to-end checks of the raftd command line: help, version, errors, and
 * `raftd demo` starting and stopping a local cluster.
 */

import { strict as assert } from "node:assert";
import { RAFTD_V8_FLAGS } from "../../src/platform/process.ts";
import { cli, e2eTest, http, raftdCommand, sleep, waitFor } from "./helpers.ts";

e2eTest("raftd --help, --version, <cmd> --help and usage errors", async () => {
  const version = await cli(["--version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^raftd \d+\.\d+\.\d+\S* \((deno|bun)\)\n$/);
  const help = await cli(["--help"]);
  assert.equal(help.code, 0);
  for (
    const cmd of [
      "serve",
      "status",
      "peers",
      "snapshot",
      "transfer-leader",
      "kv",
      "demo",
      "recover",
    ]
  ) {
    assert.match(help.stdout, new RegExp(`^  ${cmd} `, "m"));
    const sub = await cli([cmd, "--help"]);
    assert.equal(sub.code, 0, `${cmd} --help: ${sub.stderr}`);
    assert.match(sub.stdout, new RegExp(`^Usage: raftd ${cmd}`), cmd);
    assert.match(sub.stdout, /--help/);
  }
  const serveHelp = await cli(["serve", "--help"]);
  for (
    const flag of [
      "--id",
      "--raft",
      "--http",
      "--data",
      "--bootstrap",
      "--join",
      "--api-token-file",
      "--log-level",
      "--log-format",
    ]
  ) {
    assert.ok(serveHelp.stdout.includes(flag), flag);
  }
  for (
    const [args, code, msg] of [
      [["bogus"], 2, /^error: raftd: unknown command "bogus"/],
      [["serve", "--id", "n1"], 2, /--data is required/],
      [
        ["serve", "--id", "n1", "--data", "/tmp/x", "--bootstrap", "--join", "http://h:1"],
        2,
        /exclude each other/,
      ],
      [["peers", "frob"], 2, /unknown subcommand "frob"/],
      [["kv", "put"], 2, /missing KEY/],
      [["kv", "list", "--limit", "x"], 2, /--limit must be an integer/],
      [["kv", "get", "k", "--prefix", "p"], 2, /--prefix does not apply to get/],
      [["kv", "list", "a", "--prefix", "b"], 2, /the prefix is given twice/],
      [["snapshot", "frob"], 2, /unknown subcommand "frob"; expected save, inspect or restore/],
      [["snapshot", "save"], 2, /missing FILE/],
      [["recover", "--peers", "p.json"], 2, /--data and --peers are required/],
      [["status", "--json", "--bogus"], 2, /^\{"error":"raftd status: Unknown option '--bogus'/],
      [
        ["status", "--server", "http://127.0.0.1:9"],
        1,
        /cannot reach raftd at http:\/\/127\.0\.0\.1:9/,
      ],
    ] as const
  ) {
    const r = await cli([...args]);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, msg);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
});

function freeBase(): number {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    const listeners: Deno.Listener[] = [];
    try {
      for (const p of [base, base + 1, base + 2, base + 1000, base + 1001, base + 1002]) {
        listeners.push(Deno.listen({ hostname: "127.0.0.1", port: p }));
      }
      return base;
    } catch {
      // taken: try another base
    } finally {
      for (const l of listeners) l.close();
    }
  }
}

e2eTest({
  name: "raftd demo runs three nodes and stops them all on SIGINT",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const base = freeBase();
    const { command, args } = raftdCommand();
    const child = new Deno.Command(command, {
      args: [...args, "demo", "--base-port", String(base)],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let out = "";
    const pump = (async () => {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) out += chunk;
    })();
    const errPump = new Response(child.stderr).text();
    let stopped = false;
    try {
      await waitFor("the demo to be ready", () => out.includes("Press Ctrl-C"), 40_000);
      const dir = /data in (\S+?),/.exec(out)?.[1];
      assert.ok(dir, out);
      const urls = [...out.matchAll(/http (http:\/\/127\.0\.0\.1:\d+)/g)].map((m) => m[1]);
      assert.equal(urls.length, 3, out);
      let r = await http(`${urls[1]}/v1/kv/demo`, { method: "PUT", body: "works" });
      assert.equal(r.status, 200, r.text);
      r = await http(`${urls[2]}/v1/kv/demo`);
      assert.equal(r.text, "works");
      const pids = [...out.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
      assert.equal(pids.length, 3);
      if (command === Deno.execPath() && Deno.build.os === "linux") {
        // From source on Deno the nodes run with raftd's V8 flags (a small young generation).
        for (const pid of pids) {
          const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
          assert.ok(argv.includes(`--v8-flags=${RAFTD_V8_FLAGS}`), argv.join(" "));
        }
      }
      child.kill("SIGINT");
      const status = await child.status;
      stopped = true;
      await pump;
      assert.equal(status.code, 0, await errPump);
      assert.match(out, /raftd demo: stopped/);
      await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
      for (const pid of pids) {
        // kill -0: the node processes must be gone.
        const alive = await new Deno.Command("kill", { args: ["-0", String(pid)], stderr: "null" })
          .output();
        assert.equal(alive.success, false, `node pid ${pid} still running`);
      }
    } finally {
      if (!stopped) {
        child.kill("SIGINT");
        await Promise.race([child.status, sleep(8000)]);
        try {
          child.kill("SIGKILL");
        } catch {
          // ended
        }
        await child.status;
      }
      await errPump.catch(() => {});
    }
  },
});
