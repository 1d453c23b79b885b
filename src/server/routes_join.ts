/**
 * `POST /v1/join`: a server holding the join token gets the cluster's
 * secrets (see `secrets.ts`). The request carries a proof of the token, not
 * the token; the answer is sealed with it. No bearer token is needed (the
 * joiner has none yet).
 *
 * @module
 */

import type { ApiContext } from "./api_context.ts";
import { readJsonObject } from "./body.ts";
import { HttpError, jsonResponse } from "./errors.ts";
import { sealSecrets } from "./secrets.ts";
import { checkServerId } from "./validate.ts";

const FIELDS = new Set(["id", "nonce", "proof"]);

function base64urlField(value: unknown, field: string): string {
  if (typeof value !== "string" || !/^[A-Za-z0-9_-]{16,64}$/.test(value)) {
    throw new HttpError(
      400,
      `${field} must be 16 to 64 characters of base64url, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/**
 * POST /v1/join `{"id","nonce","proof"}` → `{"iv","sealed"}`: the cluster key,
 * the API token and the cluster id, sealed for the holder of the join token.
 * 404 when this cluster has no cluster key, 403 when the proof is wrong.
 *
 * @example
 * ```ts ignore
 * import { join } from "./routes_join.ts";
 * const res = await join(ctx, req);
 * ```
 */
export async function join(ctx: ApiContext, req: Request): Promise<Response> {
  const clusterKey = ctx.secrets.clusterKey;
  if (clusterKey === undefined) {
    throw new HttpError(
      404,
      "this cluster has no cluster key: servers join it with --join alone, without --join-token",
    );
  }
  const body = await readJsonObject(req);
  const unknown = Object.keys(body).find((k) => !FIELDS.has(k));
  if (unknown !== undefined) {
    throw new HttpError(400, `unknown field ${JSON.stringify(unknown)}; expected id, nonce, proof`);
  }
  const request = {
    id: checkServerId(body.id, "id"),
    nonce: base64urlField(body.nonce, "nonce"),
    proof: base64urlField(body.proof, "proof"),
  };
  const sealed = await sealSecrets(clusterKey, request, {
    clusterKey,
    apiToken: ctx.secrets.apiToken,
    clusterId: ctx.clusterId(),
  });
  if (sealed === undefined) {
    throw new HttpError(403, "the join token is not this cluster's");
  }
  return jsonResponse(200, sealed);
}
