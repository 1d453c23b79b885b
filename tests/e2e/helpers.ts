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
  let reason = "";
  const passed = await t.step(name, async () => {
    try {
      await fn();
    } catch (e) {
      reason = e instanceof Error ? e.message : String(e);
      throw e;
    }
  });
  // The reason goes with the test's own error, so an excerpt of the output
  // that shows the test failing shows why.
  if (!passed) throw new Error(`step failed: ${name}${reason ? `: ${reason}` : ""}`);
}

/** Ports {@linkcode freePort} handed out: none is handed out twice in one test run. */
const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 (bound then released), never one this
 * process handed out before: the kernel may well give a just-released port
 * again (about one 10-port test in 200 got a port twice, and its second
 * node could not listen).
 */
export function freePort(): number {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port not handed out before, after 1000 tries (${handedOut.size} out)`);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Thrown by a {@linkcode waitFor} condition that can no longer come true: it ends the wait at once. */
export class GaveUp extends Error {}

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
      if (e instanceof GaveUp) throw e;
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

/** How often a node's first start is retried on new ports when another process took one. */
const PORT_RETRIES = 5;

/** What raftd prints when it cannot bind its --raft or --http address because it is taken. */
const ADDRESS_IN_USE = /cannot listen on --(raft|http) \S+: address already in use/;

/** One raftd node process (restartable with the same id, ports and data). */
export class Node {
  readonly id: string;
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
  #raftPort: number;
  #httpPort: number;
  /**
   * Whether the test has read the ports (or an address made of them): from
   * then on they are the node's for good, even if another process took one.
   */
  #portsPublished = false;
  /** Whether a process of this node ever got as far as serving. */
  #served = false;
  #stopping = false;
  #exit: Deno.CommandStatus | undefined;
  #logs: string[] = [];
  #pump: Promise<void> | undefined;

  constructor(id: string, dataDir: string, extra: string[] = []) {
    this.id = id;
    this.#raftPort = freePort();
    this.#httpPort = freePort();
    this.dataDir = dataDir;
    this.extra = extra;
  }

  get raftPort(): number {
    this.#portsPublished = true;
    return this.#raftPort;
  }

  get httpPort(): number {
    this.#portsPublished = true;
    return this.#httpPort;
  }

  get url(): string {
    this.#portsPublished = true;
    return this.#url();
  }

  get raftAddress(): string {
    this.#portsPublished = true;
    return this.#raftAddress();
  }

  #url(): string {
    return `${this.https ? "https" : "http"}://127.0.0.1:${this.#httpPort}`;
  }

  #raftAddress(): string {
    return `127.0.0.1:${this.#raftPort}`;
  }

  /**
   * Start the process with `args` after the common ones. Ports are chosen
   * free, then bound by the child a little later: if another process took
   * one meanwhile and the test has not used the node's addresses yet, the
   * node starts again on new ports.
   */
  start(args: string[] = []): void {
    if (this.child) throw new Error(`${this.id} is already running`);
    this.#stopping = false;
    this.#spawn(args, PORT_RETRIES);
  }

  #spawn(args: string[], portRetries: number): void {
    this.#exit = undefined;
    const raftd = raftdCommand();
    const [command, ...pre] = [...this.wrapper, raftd.command, ...raftd.args];
    const url = this.#url();
    this.child = new Deno.Command(command, {
      args: [
        ...pre,
        "serve",
        "--id",
        this.id,
        ...(this.bindAll
          ? [
            "--raft",
            `0.0.0.0:${this.#raftPort}`,
            "--advertise-raft",
            this.#raftAddress(),
            "--http",
            `0.0.0.0:${this.#httpPort}`,
            "--advertise-http",
            url,
          ]
          : ["--raft", this.#raftAddress(), "--http", `127.0.0.1:${this.#httpPort}`]),
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
    let addressInUse = false;
    const keep = async (stream: ReadableStream<Uint8Array>) => {
      for await (const line of stream.pipeThrough(new TextDecoderStream()).pipeThrough(lines())) {
        if (line.includes(`${this.id} serving: raft`)) this.#served = true;
        if (ADDRESS_IN_USE.test(line)) addressInUse = true;
        this.#logs.push(line);
        if (this.#logs.length > 300) this.#logs.shift();
      }
    };
    const pump = Promise.all([keep(child.stdout), keep(child.stderr)]).then(() => {});
    this.#pump = pump;
    // After the output is read, so the reason it ended is known.
    Promise.all([child.status, pump]).then(([status]) => {
      if (this.child !== child || this.#stopping) return;
      if (
        addressInUse && !this.#served && !this.#portsPublished && portRetries > 0
      ) {
        const taken = `${this.#raftAddress()} / ${this.#url()}`;
        this.#raftPort = freePort();
        this.#httpPort = freePort();
        this.#logs.push(`(test: ${taken} was taken by another process; starting on new ports)`);
        this.child = undefined;
        this.#spawn(args, portRetries - 1);
        return;
      }
      this.#exit = status;
    }, () => {});
  }

  /** Send `signal` and wait for the process to end. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus | undefined> {
    this.#stopping = true;
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
    this.#exit = undefined;
    return status;
  }

  /** When the process ended on its own: how, and its last lines; else undefined. */
  endedOnItsOwn(): string | undefined {
    const status = this.#exit;
    if (!this.child || !status) return undefined;
    const how = `code ${status.code}${status.signal ? `, ${status.signal}` : ""}`;
    return `${this.id} exited (${how}); its last lines:\n${
      this.logs().split("\n").slice(-40).join("\n")
    }`;
  }

  /** The last lines the process printed. */
  logs(): string {
    return this.#logs.map((l) => `  [${this.id}] ${l}`).join("\n");
  }

  async status(): Promise<Record<string, unknown>> {
    return (await http(`${this.#url()}/v1/status`, this.#init())).json();
  }

  #init(): RequestInit {
    return {
      ...(this.https ? { client: this.https } : {}),
      ...(this.token ? { headers: { authorization: `Bearer ${this.token}` } } : {}),
    } as RequestInit;
  }

  /**
   * Whether the node answers /health with 200. A node whose process ended on
   * its own never will: that throws {@linkcode GaveUp}, with its last lines.
   */
  async healthy(): Promise<boolean> {
    const ended = this.endedOnItsOwn();
    if (ended) throw new GaveUp(ended);
    try {
      const up = (await http(`${this.#url()}/health`, this.#init())).status === 200;
      // Its ports are known to the cluster now, whatever its log level let it print.
      if (up) this.#served = true;
      return up;
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

/**
 * Wait until every running node in `nodes` is healthy and the configuration
 * has `voters` voters. A node whose process ended on its own ends the wait at
 * once, with its last lines; a timeout says what was still missing.
 */
export async function waitForCluster(nodes: Node[], voters: string[], ms = 30_000): Promise<void> {
  const want = JSON.stringify([...voters].sort());
  await waitFor(`a healthy cluster with voters ${voters.join(",")}`, async () => {
    for (const n of nodes) {
      const ended = n.endedOnItsOwn();
      if (ended) throw new GaveUp(`${ended}\n(while waiting for voters ${voters.join(",")})`);
    }
    for (const n of nodes) {
      if (n.child && !(await n.healthy())) throw new Error(`${n.id} is not healthy yet`);
    }
    const leader = await leaderOf(nodes);
    const s = await leader.status();
    const conf = s.configuration as { id: string; suffrage: string; http: string | null }[];
    const got = JSON.stringify(conf.filter((c) => c.suffrage === "voter").map((c) => c.id).sort());
    if (got !== want || conf.some((c) => c.http === null)) {
      throw new Error(`the leader ${leader.id} has configuration ${JSON.stringify(conf)}`);
    }
    return true;
  }, ms);
}
