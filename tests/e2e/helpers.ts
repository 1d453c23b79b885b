/**
 * Real-process helpers for the end-to-end tests: run `raftd` (from source
 * by default, the compiled binary when RAFTD_BIN is set) on free loopback
 * ports, talk to it over HTTP, and always clean up.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** What an end-to-end test runs: the source (always) and the compiled binary (when RAFTD_BIN is set). */
export interface E2ETarget {
  /** Shown in the test name. */
  name: string;
  /** Path of the compiled binary, or undefined for the source. */
  bin?: string;
}

let activeBin: string | undefined;

/** The targets every end-to-end test runs against. */
export function e2eTargets(): E2ETarget[] {
  const bin = Deno.env.get("RAFTD_BIN");
  return bin ? [{ name: "source" }, { name: "binary", bin }] : [{ name: "source" }];
}

/** Register `fn` once per target (source, and the binary when RAFTD_BIN is set). */
export function e2eTest(
  nameOrDef: string | Deno.TestDefinition,
  fn?: (t: Deno.TestContext) => Promise<void>,
): void {
  const def: Deno.TestDefinition = typeof nameOrDef === "string"
    ? { name: nameOrDef, fn: fn! }
    : nameOrDef;
  for (const target of e2eTargets()) {
    Deno.test({
      ...def,
      name: `${def.name} [${target.name}]`,
      fn: async (t) => {
        activeBin = target.bin;
        try {
          await def.fn(t);
        } finally {
          activeBin = undefined;
        }
      },
    });
  }
}

/** The command that runs raftd: the active target's binary, or this Deno running cli/main.ts. */
export function raftdCommand(): { command: string; args: string[] } {
  if (activeBin) return { command: activeBin, args: [] };
  return {
    command: Deno.execPath(),
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}cli/main.ts`],
  };
}

/**
 * Run one step of a test. A failed step ends the test, so its `finally` sees
 * the failure (and prints the nodes' logs); the steps after it build on it.
 */
export async function step(
  t: Deno.TestContext,
  name: string,
  fn: () => Promise<void>,
): Promise<void> {
  if (!(await t.step(name, fn))) throw new Error(`step failed: ${name}`);
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `ok` every 100 ms until it is true; throws naming `what` after `ms`. */
export async function waitFor(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await ok()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`,
      );
    }
    await sleep(100);
  }
}

/**
 * Run the raftd CLI to completion. A run still going after `timeoutMs`
 * (default 60 s) is killed and reported as a failure of the test.
 */
export async function cli(
  args: string[],
  options: { stdin?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const { command, args: pre } = raftdCommand();
  const child = new Deno.Command(command, {
    args: [...pre, ...args],
    stdin: options.stdin !== undefined ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // ended just now
    }
  }, options.timeoutMs ?? 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const td = new TextDecoder();
  const result = { code: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
  if (timedOut) {
    throw new Error(
      `raftd ${args.join(" ")} did not end within ${options.timeoutMs ?? 60_000} ms; ` +
        `stderr: ${result.stderr.slice(-2000)}`,
    );
  }
  return result;
}

/** HTTP call returning status, body text and headers. */
export async function http(
  url: string,
  init: RequestInit = {},
): Promise<
  { status: number; text: string; headers: Headers; json<T = Record<string, unknown>>(): T }
> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers, json: <T>() => JSON.parse(text) as T };
}

/** Fast timings so elections and catch-up take well under a second. */
export const FAST_FLAGS = [
  "--heartbeat-interval",
  "50",
  "--election-timeout",
  "500",
  "--log-level",
  "info",
];

/** One raftd node process (restartable with the same id, ports and data). */
export class Node {
  readonly id: string;
  readonly raftPort: number;
  readonly httpPort: number;
  readonly dataDir: string;
  readonly extra: string[];
  child: Deno.ChildProcess | undefined;
  /**
   * A command the process is started through (it gets the raftd command and
   * its arguments after its own), e.g. `unshare` to give it its own mounts.
   */
  wrapper: string[] = [];
  /** When set, the node serves HTTPS and the test talks to it through this client. */
  https: Deno.HttpClient | undefined;
  /**
   * Bind all interfaces (advertising loopback), as a node reachable from
   * other hosts does: the secure defaults apply to it.
   */
  bindAll = false;
  /** When set, the test's own calls (status, health) carry this bearer token. */
  token: string | undefined;
  #logs: string[] = [];
  #pump: Promise<void> | undefined;

  constructor(id: string, dataDir: string, extra: string[] = []) {
    this.id = id;
    this.raftPort = freePort();
    this.httpPort = freePort();
    this.dataDir = dataDir;
    this.extra = extra;
  }

  get url(): string {
    return `${this.https ? "https" : "http"}://127.0.0.1:${this.httpPort}`;
  }

  get raftAddress(): string {
    return `127.0.0.1:${this.raftPort}`;
  }

  /** Start the process with `args` after the common ones. */
  start(args: string[] = []): void {
    if (this.child) throw new Error(`${this.id} is already running`);
    const raftd = raftdCommand();
    const [command, ...pre] = [...this.wrapper, raftd.command, ...raftd.args];
    this.child = new Deno.Command(command, {
      args: [
        ...pre,
        "serve",
        "--id",
        this.id,
        ...(this.bindAll
          ? [
            "--raft",
            `0.0.0.0:${this.raftPort}`,
            "--advertise-raft",
            this.raftAddress,
            "--http",
            `0.0.0.0:${this.httpPort}`,
            "--advertise-http",
            this.url,
          ]
          : ["--raft", this.raftAddress, "--http", `127.0.0.1:${this.httpPort}`]),
        "--data",
        this.dataDir,
        ...FAST_FLAGS,
        ...this.extra,
        ...args,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const child = this.child;
    const keep = async (stream: ReadableStream<Uint8Array>) => {
      for await (const line of stream.pipeThrough(new TextDecoderStream()).pipeThrough(lines())) {
        this.#logs.push(line);
        if (this.#logs.length > 300) this.#logs.shift();
      }
    };
    this.#pump = Promise.all([keep(child.stdout), keep(child.stderr)]).then(() => {});
  }

  /** Send `signal` and wait for the process to end. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus | undefined> {
    const child = this.child;
    if (!child) return undefined;
    try {
      child.kill(signal);
    } catch {
      // already ended
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // ended
      }
    }, 10_000);
    const status = await child.status;
    clearTimeout(timer);
    await this.#pump;
    this.child = undefined;
    return status;
  }

  /** The last lines the process printed. */
  logs(): string {
    return this.#logs.map((l) => `  [${this.id}] ${l}`).join("\n");
  }

  async status(): Promise<Record<string, unknown>> {
    return (await http(`${this.url}/v1/status`, this.#init())).json();
  }

  #init(): RequestInit {
    return {
      ...(this.https ? { client: this.https } : {}),
      ...(this.token ? { headers: { authorization: `Bearer ${this.token}` } } : {}),
    } as RequestInit;
  }

  async healthy(): Promise<boolean> {
    try {
      return (await http(`${this.url}/health`, this.#init())).status === 200;
    } catch {
      return false;
    }
  }
}

function lines(): TransformStream<string, string> {
  let buf = "";
  return new TransformStream({
    transform(chunk, ctl) {
      buf += chunk;
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      for (const p of parts) ctl.enqueue(p);
    },
    flush(ctl) {
      if (buf) ctl.enqueue(buf);
    },
  });
}

/** The leader among `nodes` as the first healthy node reports it. */
export async function leaderOf(nodes: Node[]): Promise<Node> {
  for (const n of nodes) {
    if (!n.child) continue;
    try {
      const s = await n.status();
      const id = (s.leader as { id?: string } | null)?.id;
      const leader = nodes.find((x) => x.id === id && x.child);
      if (leader && (await leader.status()).state === "leader") return leader;
    } catch {
      // try the next one
    }
  }
  throw new Error("no leader known");
}

/** Wait until every running node in `nodes` is healthy and the configuration has `voters` voters. */
export async function waitForCluster(nodes: Node[], voters: string[], ms = 30_000): Promise<void> {
  await waitFor(`a healthy cluster with voters ${voters.join(",")}`, async () => {
    for (const n of nodes) if (n.child && !(await n.healthy())) return false;
    const leader = await leaderOf(nodes);
    const s = await leader.status();
    const conf = s.configuration as { id: string; suffrage: string; http: string | null }[];
    const got = conf.filter((c) => c.suffrage === "voter").map((c) => c.id).sort();
    return JSON.stringify(got) === JSON.stringify([...voters].sort()) &&
      conf.every((c) => c.http !== null);
  }, ms);
}
