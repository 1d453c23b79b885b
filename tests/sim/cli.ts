/**
 * The whole-node simulation's command (see `simulation.ts`).
 *
 * ```sh
 * deno task sim --seeds 1000 --seed-start 1 [--nodes 3|5] [--steps 150] [--workers 2]
 * deno task sim --seed 42 --trace [--nodes 3|5] [--steps 150]
 * ```
 *
 * Prints one JSON line `{"seeds":N,"steps":...,"client_ops":C,"violations":V,"failing_seeds":[...]}`
 * (`client_ops`: client operations checked for linearizability)
 * and exits non-zero when any seed violates an invariant; each failure is
 * also printed (to stderr) with the command that replays it.
 *
 * @module
 */

import { configure, type LogRecord } from "@logtape/logtape";
import { parseArgs } from "node:util";
import {
  type BatchOptions,
  type BatchSummary,
  emptySummary,
  mergeSummary,
  runBatch,
} from "./runner.ts";
import { runSimulation } from "./simulation.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "100" },
    "seed-start": { type: "string", default: "1" },
    seed: { type: "string" },
    nodes: { type: "string" },
    steps: { type: "string" },
    workers: { type: "string" },
    trace: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});

if (values.help) {
  console.log(
    "usage: sim [--seeds N] [--seed-start S] [--nodes 3|5] [--steps K] [--workers W]\n" +
      "       sim --seed S [--trace] [--nodes 3|5] [--steps K]",
  );
  Deno.exit(0);
}

function int(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
    Deno.exit(2);
  }
  return n;
}

const nodes = int("nodes", values.nodes, 1);
const steps = int("steps", values.steps, 1);

function report(summary: BatchSummary, extraFlags: string): never {
  for (const f of summary.failures) {
    console.error(`seed ${f.seed} (${f.nodes} nodes): ${f.violation}`);
    console.error(`  replay: deno task sim --seed ${f.seed} --trace${extraFlags}`);
  }
  console.log(JSON.stringify({
    seeds: summary.seeds,
    steps: summary.steps,
    events: summary.events,
    client_ops: summary.clientOps,
    violations: summary.violations,
    failing_seeds: summary.failures.map((f) => f.seed).sort((a, b) => a - b),
  }));
  Deno.exit(summary.violations > 0 ? 1 : 0);
}

const flags = (nodes !== undefined ? ` --nodes ${nodes}` : "") +
  (steps !== undefined ? ` --steps ${steps}` : "");

if (values.seed !== undefined) {
  const seed = int("seed", values.seed, 0)!;
  const trace = values.trace ? (line: string) => console.log(line) : undefined;
  if (values.trace) {
    // What the nodes log (warnings and errors) goes into the trace too.
    const render = (r: LogRecord) =>
      r.message.map((part) => part instanceof Error ? part.message : String(part)).join("");
    await configure({
      reset: true,
      sinks: {
        trace: (r: LogRecord) => {
          const server = r.properties.server === undefined ? "" : `${r.properties.server} `;
          console.log(`        [${r.level}] ${server}${render(r)}`);
        },
      },
      loggers: [
        { category: ["raftd"], lowestLevel: "warning", sinks: ["trace"] },
        { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["trace"] },
      ],
    });
  }
  const r = await runSimulation({ seed, nodes, steps, trace });
  if (values.trace) console.log(`stats ${JSON.stringify(r.stats)}`);
  report({
    seeds: 1,
    steps: r.steps,
    events: r.events,
    clientOps: r.clientOps,
    violations: r.violation === undefined ? 0 : 1,
    failures: r.violation === undefined ? [] : [{ seed, nodes: r.nodes, violation: r.violation }],
  }, flags);
}

const count = int("seeds", values.seeds, 1)!;
const start = int("seed-start", values["seed-start"], 0)!;
const seeds = Array.from({ length: count }, (_, i) => start + i);
const workers = int("workers", values.workers, 1) ?? (count >= 64 ? 2 : 1);

if (workers <= 1) report(await runBatch({ seeds, nodes, steps }), flags);

const total = emptySummary();
await Promise.all(Array.from({ length: workers }, (_, w) => {
  const batch: BatchOptions = { seeds: seeds.filter((_, i) => i % workers === w), nodes, steps };
  const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
  return new Promise<void>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<BatchSummary>) => {
      mergeSummary(total, e.data);
      worker.terminate();
      resolve();
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(new Error(`simulation worker failed: ${e.message}`));
    };
    worker.postMessage(batch);
  });
}));
report(total, flags);
