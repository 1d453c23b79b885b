import assert from "node:assert/strict";
import {
  isLoopbackHost,
  joinRequest,
  joinTokenFor,
  loadSecrets,
  openSecrets,
  randomSecret,
  sealSecrets,
  storeSecrets,
} from "../../src/server/secrets.ts";

Deno.test("join exchange: only the key's token opens the answer; others are refused or cannot read it", async () => {
  const key = randomSecret();
  const token = await joinTokenFor(key);
  assert.match(token, /^raftd-join-1\.[A-Za-z0-9_-]{43}$/);
  assert.equal(await joinTokenFor(key), token, "derived, not random");

  const request = await joinRequest(token, "n2");
  const sealed = await sealSecrets(key, request, {
    clusterKey: key,
    apiToken: "t0k",
    clusterId: "c",
  });
  assert.ok(sealed);
  assert.ok(!sealed.sealed.includes(key), "the key does not travel in the clear");
  assert.deepEqual(await openSecrets(token, request, sealed), {
    clusterKey: key,
    apiToken: "t0k",
    clusterId: "c",
  });

  // Another cluster's token: the member refuses the proof.
  const stranger = await joinRequest(await joinTokenFor(randomSecret()), "n2");
  assert.equal(await sealSecrets(key, stranger, { clusterKey: key }), undefined);
  // A proof made for another id does not pass for this one.
  assert.equal(await sealSecrets(key, { ...request, id: "n3" }, { clusterKey: key }), undefined);
  // An answer from a server without the key cannot be opened.
  const other = randomSecret();
  const fake = await sealSecrets(other, await joinRequest(await joinTokenFor(other), "n2"), {
    clusterKey: "fake",
  });
  await assert.rejects(openSecrets(token, request, fake!), /not sealed with this join token/);
  // Malformed tokens say what a token looks like.
  await assert.rejects(joinRequest("nope", "n2"), /a join token starts with raftd-join-1\./);
  await assert.rejects(joinRequest("raftd-join-1.abc", "n2"), /holds 32 bytes/);
});

Deno.test("secrets in a data directory are private, and refused when exposed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await loadSecrets(dir), { clusterKey: undefined, apiToken: undefined });
    await storeSecrets(dir, { clusterKey: "k", apiToken: "t" });
    assert.equal((await Deno.stat(`${dir}/cluster.key`)).mode! & 0o777, 0o600);
    assert.deepEqual(await loadSecrets(dir), { clusterKey: "k", apiToken: "t" });
    await Deno.chmod(`${dir}/api.token`, 0o644);
    await assert.rejects(loadSecrets(dir), /accessible by others \(mode 0644\).*chmod 600/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loopback hosts", () => {
  for (const h of ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost", "LOCALHOST"]) {
    assert.ok(isLoopbackHost(h), h);
  }
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "example.com", "128.0.0.1", "localhost.evil"]) {
    assert.ok(!isLoopbackHost(h), h);
  }
});
