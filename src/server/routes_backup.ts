/**
 * `GET /v1/snapshot`: a backup of the state machine, streamed in the backup
 * file format (`backup_file.ts`).
 *
 * As hashicorp/raft's user snapshots (what Consul's snapshot API serves), it
 * takes a Raft snapshot now (which also compacts the log) or reuses the
 * newest one when nothing was applied since, and streams it from the
 * snapshot store: the state is never held in memory. By default the leader
 * answers after a barrier, so the backup holds every write acknowledged
 * before the request (a follower passes the request and the stream through);
 * `?consistency=stale` takes it from the node asked, leader or not (a
 * cluster that lost its quorum can still be backed up).
 *
 * @module
 */

import { InvalidStateError, StorageError } from "../errors.ts";
import { crc32cUpdate } from "../storage/crc32c.ts";
import type { SnapshotInfo, SnapshotStore } from "../storage/types.ts";
import { type ApiContext, onLeader } from "./api_context.ts";
import { encodeBackupHeader, KV_STATE_FORMAT, stateChecksum } from "./backup_file.ts";
import { HttpError } from "./errors.ts";
import { consistencyParam } from "./validate.ts";

/** How long a forwarded backup may stall before it is cut off, in ms. */
const STREAM_IDLE_MS = 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A snapshot holding at least `index`: a new one, or the newest when it is recent enough. */
async function snapshotCovering(
  ctx: ApiContext,
  store: SnapshotStore,
  index: number,
  deadline: number,
): Promise<SnapshotInfo> {
  for (;;) {
    if (ctx.raft.appliedIndex > ctx.raft.lastSnapshotIndex) {
      try {
        return await ctx.raft.snapshot();
      } catch (e) {
        // Another snapshot is being taken (automatic, or a concurrent backup): wait for it.
        if (!(e instanceof InvalidStateError)) throw e;
      }
    }
    const [newest] = await store.list();
    if (newest !== undefined && newest.index >= index) return newest;
    if (index === 0 && newest === undefined && ctx.raft.appliedIndex === 0) {
      throw new HttpError(409, "nothing to back up: this node has applied no entry yet");
    }
    if (Date.now() > deadline) {
      throw new HttpError(
        503,
        `no snapshot at index ${index} or later could be taken in time; retry shortly`,
        {},
        { "retry-after": "1" },
      );
    }
    await sleep(50);
  }
}

/** The CRC-32C and size of a stored snapshot's state (the store checks its own checksum too). */
async function measure(store: SnapshotStore, id: string): Promise<{ crc: number; size: number }> {
  let crc = 0;
  let size = 0;
  for await (const chunk of (await store.open(id)).data) {
    crc = crc32cUpdate(crc, chunk);
    size += chunk.length;
  }
  return { crc, size };
}

async function backupResponse(ctx: ApiContext, linearizable: boolean): Promise<Response> {
  const store = ctx.snapshotStore;
  if (store === undefined) throw new HttpError(501, "this node cannot serve backups");
  // A snapshot is taken, read once for its checksum and once to send: allow for large states.
  const deadline = Date.now() + ctx.timeoutMs * 12;
  if (linearizable) await ctx.raft.barrier({ timeout: ctx.timeoutMs });
  const index = ctx.raft.appliedIndex;
  for (let attempt = 1;; attempt++) {
    const info = await snapshotCovering(ctx, store, index, deadline);
    try {
      const { crc, size } = await measure(store, info.id);
      const source = await store.open(info.id);
      const it = source.data[Symbol.asyncIterator]();
      // Reading the first chunk opens the file: from then on pruning cannot take it away.
      const first = await it.next();
      const header = encodeBackupHeader({
        format: 1,
        stateFormat: KV_STATE_FORMAT,
        index: info.index,
        term: info.term,
        configuration: info.configuration,
        configurationIndex: info.configurationIndex,
        size,
        checksum: stateChecksum(crc),
        clusterId: ctx.clusterId() ?? null,
        server: ctx.raft.id,
        createdAt: new Date().toISOString(),
        version: ctx.version,
      });
      let sentHeader = false;
      let pending: IteratorResult<Uint8Array> | undefined = first;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (!sentHeader) {
            sentHeader = true;
            controller.enqueue(header);
            return;
          }
          const next = pending ?? await it.next();
          pending = undefined;
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
        async cancel() {
          await it.return?.();
        },
      });
      return new Response(body, {
        status: 200,
        headers: {
          "content-type": "application/octet-stream",
          "content-disposition": `attachment; filename="raftd-${info.term}-${info.index}.snap"`,
          "x-raft-index": String(info.index),
          "x-raft-term": String(info.term),
        },
      });
    } catch (e) {
      // Pruned between listing and reading (two newer snapshots in the meantime): take another.
      if (!(e instanceof StorageError) || attempt >= 3) throw e;
    }
  }
}

/**
 * GET /v1/snapshot[?consistency=stale] → a backup file, streamed.
 *
 * @example
 * ```ts ignore
 * import { getSnapshot } from "./routes_backup.ts";
 * const res = await getSnapshot(ctx, req, new URL(req.url));
 * ```
 */
export async function getSnapshot(ctx: ApiContext, req: Request, url: URL): Promise<Response> {
  if (consistencyParam(url) === "stale") return await backupResponse(ctx, false);
  return await onLeader(
    ctx,
    req,
    url,
    undefined,
    () => backupResponse(ctx, true),
    { stream: { idleMs: STREAM_IDLE_MS } },
  );
}
