/**
 * Runs batches of seeds and sums the results; shared by the CLI, its workers
 * and the test.
 *
 * @module
 */

import { runSimulation, type SimResult } from "./simulation.ts";

/** What a batch of seeds should do. */
export interface BatchOptions {
  /** Seeds to run. */
  seeds: number[];
  /** Cluster size for every seed; default alternates 3 and 5 by seed. */
  nodes?: number;
  /** Chaos steps per seed. */
  steps?: number;
}

/** Sum of a batch. */
export interface BatchSummary {
  /** Seeds run. */
  seeds: number;
  /** Steps simulated over all seeds. */
  steps: number;
  /** Events processed over all seeds. */
  events: number;
  /** Client KV operations checked for linearizability over all seeds. */
  clientOps: number;
  /** Seeds with a violation. */
  violations: number;
  /** The failing seeds with their violation. */
  failures: Array<{ seed: number; nodes: number; violation: string }>;
}

/**
 * A summary of no seeds, to add batches to.
 *
 * @example
 * ```ts
 * import { emptySummary } from "./runner.ts";
 * console.log(emptySummary().seeds); // 0
 * ```
 */
export function emptySummary(): BatchSummary {
  return { seeds: 0, steps: 0, events: 0, clientOps: 0, violations: 0, failures: [] };
}

/**
 * Run every seed of `options` in this thread, one after the other.
 *
 * @example
 * ```ts
 * import { runBatch } from "./runner.ts";
 * const summary = await runBatch({ seeds: [1, 2], steps: 30 });
 * console.log(summary.seeds); // 2
 * ```
 */
export async function runBatch(options: BatchOptions): Promise<BatchSummary> {
  const summary = emptySummary();
  for (const seed of options.seeds) {
    const r: SimResult = await runSimulation({ seed, nodes: options.nodes, steps: options.steps });
    summary.seeds++;
    summary.steps += r.steps;
    summary.events += r.events;
    summary.clientOps += r.clientOps;
    if (r.violation !== undefined) {
      summary.violations++;
      summary.failures.push({ seed, nodes: r.nodes, violation: r.violation });
    }
  }
  return summary;
}

/**
 * Add `b` into `a`.
 *
 * @example
 * ```ts
 * import { mergeSummary, runBatch } from "./runner.ts";
 * const total = await runBatch({ seeds: [1], steps: 20 });
 * mergeSummary(total, await runBatch({ seeds: [2], steps: 20 }));
 * console.log(total.seeds); // 2
 * ```
 */
export function mergeSummary(a: BatchSummary, b: BatchSummary): void {
  a.seeds += b.seeds;
  a.steps += b.steps;
  a.events += b.events;
  a.clientOps += b.clientOps;
  a.violations += b.violations;
  a.failures.push(...b.failures);
}
