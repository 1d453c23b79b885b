/**
 * `/v1/kv` routes: get, put (with compare-and-set), delete, list.
 *
 * @module
 */

import { type ApiContext, onLeader } from "./api_context.ts";
import { readBody } from "./body.ts";
import { HttpError, jsonResponse, responseWith } from "./errors.ts";
import { encodeDelete, encodePut } from "./kv_command.ts";
import type { KvResult } from "./kv_fsm.ts";
import { checkKey, consistencyParam, intParam } from "./validate.ts";

/** The read point of a `linearizable` or `lease` read on the leader. */
function readPoint(ctx: ApiContext, consistency: "linearizable" | "lease"): Promise<number> {
  return ctx.raft.readIndex({ timeout: ctx.timeoutMs, lease: consistency === "lease" });
}

function readLocal(ctx: ApiContext, key: string): Response {
  const item = ctx.fsm.get(key);
  const applied = String(ctx.raft.appliedIndex);
  if (!item) {
    throw new HttpError(404, `key ${JSON.stringify(key)} not found`, {}, {
      "x-raft-applied-index": applied,
    });
  }
  return responseWith(item.value as Uint8Array<ArrayBuffer>, 200, {
    "content-type": "application/octet-stream",
    "x-raft-index": String(item.modifyIndex),
    "x-raft-create-index": String(item.createIndex),
    "x-raft-applied-index": applied,
  });
}

/**
 * GET /v1/kv/{key}?consistency=linearizable|lease|stale → the raw value with
 * `X-Raft-Index` (the key's modify index); 404 when absent.
 *
 * @example
 * ```ts ignore
 * import { getKey } from "./routes_kv.ts";
 * const res = await getKey(ctx, req, new URL(req.url), "a");
 * ```
 */
export function getKey(
  ctx: ApiContext,
  req: Request,
  url: URL,
  key: string,
): Response | Promise<Response> {
  checkKey(key, ctx.maxKeyBytes);
  const consistency = consistencyParam(url);
  if (consistency === "stale") return readLocal(ctx, key);
  // Plain promise chains, not async layers: a lease read is a few µs of work
  // and each layer of awaits measured about one more.
  return onLeader(
    ctx,
    req,
    url,
    undefined,
    () => readPoint(ctx, consistency).then(() => readLocal(ctx, key)),
  );
}

/**
 * GET /v1/kv/?prefix=p[&limit=n] → `{"keys": [...], "index": appliedIndex}`.
 *
 * @example
 * ```ts ignore
 * import { listKeys } from "./routes_kv.ts";
 * const res = await listKeys(ctx, req, new URL("http://x/v1/kv/?prefix=a"));
 * ```
 */
export async function listKeys(ctx: ApiContext, req: Request, url: URL): Promise<Response> {
  const prefix = url.searchParams.get("prefix") ?? "";
  const limit = intParam(url, "limit");
  const list = () =>
    jsonResponse(200, {
      keys: ctx.fsm.keys(prefix, limit ?? Infinity),
      index: ctx.raft.appliedIndex,
    });
  const consistency = consistencyParam(url);
  if (consistency === "stale") return list();
  return await onLeader(ctx, req, url, undefined, async () => {
    await readPoint(ctx, consistency);
    return list();
  });
}

function writeResponse(key: string, index: number, result: KvResult, cas: number | undefined) {
  if (result.ok) return jsonResponse(200, { index });
  throw new HttpError(
    409,
    `compare-and-set failed for key ${
      JSON.stringify(key)
    }: expected modify index ${cas}, the key has ${
      result.current === 0 ? "no value" : `modify index ${result.current}`
    }`,
    { index: result.current },
  );
}

/**
 * PUT /v1/kv/{key}[?cas=N] with the raw value as body → `{"index": N}` once
 * committed and applied; 409 on a cas mismatch.
 *
 * @example
 * ```ts ignore
 * import { putKey } from "./routes_kv.ts";
 * const res = await putKey(ctx, req, new URL(req.url), "a");
 * ```
 */
export async function putKey(
  ctx: ApiContext,
  req: Request,
  url: URL,
  key: string,
): Promise<Response> {
  checkKey(key, ctx.maxKeyBytes);
  const cas = intParam(url, "cas");
  const value = await readBody(req, ctx.maxValueBytes, "value", Math.max(ctx.timeoutMs, 1000));
  return await onLeader(ctx, req, url, value, async () => {
    const r = await ctx.raft.apply(encodePut(key, value, cas), { timeout: ctx.timeoutMs });
    return writeResponse(key, r.index, r.response, cas);
  });
}

/**
 * DELETE /v1/kv/{key}[?cas=N] → `{"index": N}`; deleting an absent key succeeds.
 *
 * @example
 * ```ts ignore
 * import { deleteKey } from "./routes_kv.ts";
 * const res = await deleteKey(ctx, req, new URL(req.url), "a");
 * ```
 */
export async function deleteKey(
  ctx: ApiContext,
  req: Request,
  url: URL,
  key: string,
): Promise<Response> {
  checkKey(key, ctx.maxKeyBytes);
  const cas = intParam(url, "cas");
  return await onLeader(ctx, req, url, undefined, async () => {
    const r = await ctx.raft.apply(encodeDelete(key, cas), { timeout: ctx.timeoutMs });
    return writeResponse(key, r.index, r.response, cas);
  });
}
