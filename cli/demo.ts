/**
 * `raftd demo`: a local three-node cluster in one terminal.
 *
 * @module
 */

import {
  type ChildProcess,
  ensureDir,
  makeTempDir,
  onSignals,
  removeDir,
  selfCommand,
  spawn,
  writeStdout,
} from "../src/platform/process.ts";
import { bool, CliError, HELP_OPTION, helpText, int, type OptionSpec, parse, str } from "./args.ts";

const COMMAND = "raftd demo";
const OPTIONS: Record<string, OptionSpec> = {
  dir: {
    type: "string",
    arg: "DIR",
    help: "data directory (kept); default: a temporary one, removed on exit",
  },
  "base-port": {
    type: "string",
    arg: "P",
    help: "Raft ports P, P+1, P+2 and HTTP ports P+1000.. (default 7001)",
  },
  "log-level": { type: "string", arg: "LEVEL", help: "log level of the nodes (default warning)" },
  ...HELP_OPTION,
};

/** Help text of `raftd demo`. */
const DEMO_HELP: string = helpText(
  `${COMMAND} [--dir DIR] [--base-port P]`,
  "Start a local 3-node cluster (n1 bootstraps, n2 and n3 join), print where to point a\n" +
    "client, and stop all nodes on Ctrl-C.",
  OPTIONS,
);

interface DemoNode {
  id: string;
  raft: string;
  http: string;
  child: ChildProcess;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function getJson(url: string): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return await res.json();
  } catch {
    return undefined;
  }
}

/**
 * Run `raftd demo`; `mainModuleUrl` is the CLI's entry module (to start the
 * nodes with the same executable).
 *
 * @example
 * ```ts ignore
 * import { demo } from "./demo.ts";
 * await demo([], import.meta.url);
 * ```
 */
export async function demo(argv: string[], mainModuleUrl: string): Promise<number> {
  const p = parse(COMMAND, argv, OPTIONS, 0);
  if (bool(p, "help")) {
    writeStdout(DEMO_HELP);
    return 0;
  }
  const base = int(COMMAND, p, "base-port", { min: 1, max: 64535 - 3 }) ?? 7001;
  const logLevel = str(p, "log-level") ?? "warning";
  const given = str(p, "dir");
  const dir = given ?? await makeTempDir("raftd-demo-");
  if (given !== undefined) await ensureDir(given);
  const self = selfCommand(mainModuleUrl);
  const nodes: DemoNode[] = [];
  let exited: string | undefined;
  let interrupted = false;
  const off = onSignals(["SIGINT", "SIGTERM"], () => interrupted = true);

  const start = (i: number) => {
    const id = `n${i + 1}`;
    const raft = `127.0.0.1:${base + i}`;
    const http = `http://127.0.0.1:${base + 1000 + i}`;
    const args = [
      ...self.args,
      "serve",
      "--id",
      id,
      "--raft",
      raft,
      "--http",
      http.slice("http://".length),
      "--data",
      `${dir}/${id}`,
      "--log-level",
      logLevel,
      ...(i === 0 ? ["--bootstrap"] : ["--join", nodes[0].http]),
    ];
    const child = spawn(self.command, args, { stdout: "inherit", stderr: "inherit" });
    child.status.then((s) => {
      exited ??= `${id} exited (code ${s.code ?? s.signal})`;
    });
    nodes.push({ id, raft, http, child });
  };

  const waitFor = async (what: string, ok: () => Promise<boolean>, ms: number) => {
    const deadline = Date.now() + ms;
    while (!(await ok())) {
      if (interrupted) throw new CliError(`${COMMAND}: interrupted`, 130);
      if (exited) throw new CliError(`${COMMAND}: ${exited} while waiting for ${what}`);
      if (Date.now() > deadline) throw new CliError(`${COMMAND}: timed out waiting for ${what}`);
      await sleep(200);
    }
  };

  try {
    start(0);
    await waitFor(
      "n1 to become leader",
      async () => (await getJson(`${nodes[0].http}/health`)) !== undefined,
      20_000,
    );
    start(1);
    start(2);
    await waitFor("n2 and n3 to join as voters", async () => {
      const s = await getJson(`${nodes[0].http}/v1/status`);
      const conf = (s?.configuration ?? []) as { suffrage: string }[];
      if (conf.length !== 3 || !conf.every((c) => c.suffrage === "voter")) return false;
      for (const n of nodes) if ((await getJson(`${n.http}/health`)) === undefined) return false;
      return true;
    }, 30_000);

    const cmd = self.args.length === 0 ? self.command : "deno task raftd";
    const showcase = await putAndRead(nodes[0].http, nodes[1].http);
    writeStdout(
      [
        `raftd demo: a 3-node cluster is running (data in ${dir}${
          given === undefined ? ", removed on exit" : ""
        })`,
        "",
        ...nodes.map((n) => `  ${n.id}  raft ${n.raft}  http ${n.http}  (pid ${n.child.pid})`),
        "",
        showcase,
        "",
        "Point a client at any node, e.g.:",
        `  export RAFTD_SERVER=${nodes[0].http}`,
        `  ${cmd} kv put greeting hello`,
        `  ${cmd} kv get greeting --server ${nodes[1].http}`,
        `  ${cmd} status`,
        `  curl -X PUT --data-binary world ${nodes[2].http}/v1/kv/greeting`,
        `  curl ${nodes[1].http}/v1/kv/greeting`,
        "",
        "Press Ctrl-C to stop all nodes.",
        "",
      ].join("\n"),
    );
    while (!interrupted && !exited) await sleep(200);
    if (exited && !interrupted) throw new CliError(`${COMMAND}: ${exited}; stopping the others`);
    return 0;
  } finally {
    off();
    await Promise.all(nodes.map(async (n) => {
      n.child.kill("SIGTERM");
      const done = await Promise.race([
        n.child.status.then(() => true),
        sleep(5000).then(() => false),
      ]);
      if (!done) {
        n.child.kill("SIGKILL");
        await n.child.status;
      }
    }));
    if (given === undefined) await removeDir(dir);
    writeStdout("raftd demo: stopped\n");
  }
}

/**
 * Show the cluster working: a write through one node and a linearizable
 * read of it through another (which forwards to the leader).
 */
async function putAndRead(writeUrl: string, readUrl: string): Promise<string> {
  try {
    const put = await fetch(`${writeUrl}/v1/kv/greeting`, { method: "PUT", body: "hello" });
    const putBody = await put.json() as { index?: number; error?: string };
    if (!put.ok) return `(demo write failed: ${putBody.error ?? put.status})`;
    const get = await fetch(`${readUrl}/v1/kv/greeting?consistency=linearizable`);
    const value = await get.text();
    if (!get.ok) return `(demo read failed: ${get.status} ${value})`;
    return [
      `  PUT ${writeUrl}/v1/kv/greeting  body "hello"  -> committed at index ${putBody.index}`,
      `  GET ${readUrl}/v1/kv/greeting?consistency=linearizable  -> "${value}" (modify index ${
        get.headers.get("x-raft-index")
      })`,
    ].join("\n");
  } catch (e) {
    return `(demo put/get failed: ${e instanceof Error ? e.message : String(e)})`;
  }
}
