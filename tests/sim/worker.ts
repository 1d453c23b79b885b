/**
 * Worker entry of the simulation CLI: runs the seeds it is sent and posts
 * back a {@linkcode BatchSummary}.
 *
 * @module
 */

import { type BatchOptions, runBatch } from "./runner.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<BatchOptions>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

const scope = self as unknown as WorkerScope;
scope.onmessage = async (e: MessageEvent<BatchOptions>) => {
  scope.postMessage(await runBatch(e.data));
  scope.close();
};
