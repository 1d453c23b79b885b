/**
 * End-to-end: the API over HTTPS, with and without client certificates:
 * joins, forwarding and backups between members over HTTPS, and the CLI's
 * --ca-file / --cert-file / --key-file.
 */

import { strict as assert } from "node:assert";
import { cli, e2eTest, http, leaderOf, Node, step, waitFor, waitForCluster } from "./helpers.ts";

const FIXTURES = new URL("../transport/fixtures/", import.meta.url).pathname;

/** Test certificates copied where the key can be private (mode 600), as raftd requires. */
async function certificates(dir: string) {
  const files = { ca: `${dir}/ca.pem`, cert: `${dir}/node.pem`, key: `${dir}/node.key` };
  await Deno.copyFile(`${FIXTURES}ca.pem`, files.ca);
  await Deno.copyFile(`${FIXTURES}node.pem`, files.cert);
  await Deno.copyFile(`${FIXTURES}node.key`, files.key);
  await Deno.chmod(files.key, 0o600);
  const pem = {
    ca: await Deno.readTextFile(files.ca),
    cert: await Deno.readTextFile(files.cert),
    key: await Deno.readTextFile(files.key),
  };
  return { files, pem };
}

e2eTest({
  name: "e2e: HTTPS API with client certificates; members join, forward and back up over it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftd-e2e-https-" });
    const { files, pem } = await certificates(dir);
    const client = Deno.createHttpClient({ caCerts: [pem.ca], cert: pem.cert, key: pem.key });
    const tlsFlags = [
      "--http-tls-cert",
      files.cert,
      "--http-tls-key",
      files.key,
      "--http-tls-client-ca",
      files.ca,
    ];
    const nodes = [1, 2, 3].map((i) => new Node(`n${i}`, `${dir}/n${i}`, tlsFlags));
    for (const n of nodes) n.https = client;
    const plainTls = new Node("s1", `${dir}/s1`, [
      "--http-tls-cert",
      files.cert,
      "--http-tls-key",
      files.key,
    ]);
    plainTls.https = Deno.createHttpClient({ caCerts: [pem.ca] });
    const all = [...nodes, plainTls];
    const withCert = ["--ca-file", files.ca, "--cert-file", files.cert, "--key-file", files.key];
    let ok = false;
    try {
      await step(
        t,
        "three nodes join one another over HTTPS with client certificates",
        async () => {
          nodes[0].start(["--bootstrap"]);
          await waitFor("n1 healthy", () => nodes[0].healthy());
          nodes[1].start(["--join", nodes[0].url]);
          nodes[2].start(["--join", nodes[0].url]);
          await waitForCluster(nodes, ["n1", "n2", "n3"]);
          const conf = (await nodes[0].status()).configuration as { http: string }[];
          assert.ok(
            conf.every((s) => s.http.startsWith("https://127.0.0.1:")),
            JSON.stringify(conf),
          );
        },
      );

      await step(t, "the CLI needs the CA and a client certificate", async () => {
        const st = await cli(["status", "--json", "--server", nodes[0].url, ...withCert]);
        assert.equal(st.code, 0, st.stderr);
        assert.equal(JSON.parse(st.stdout).id, "n1");
        const byEnv = await cli(["status", "--json", "--server", nodes[1].url], {
          env: { RAFTD_CA_FILE: files.ca, RAFTD_CERT_FILE: files.cert, RAFTD_KEY_FILE: files.key },
        });
        assert.equal(byEnv.code, 0, byEnv.stderr);
        for (
          const [args, what, pattern] of [
            [["--ca-file", files.ca], "no client certificate", /--cert-file and --key-file/],
            [
              ["--cert-file", files.cert, "--key-file", files.key],
              "no CA",
              /certificate is not trusted \(give the CA it chains to with --ca-file\)/,
            ],
            [[], "neither", /certificate is not trusted/],
          ] as const
        ) {
          const r = await cli(["status", "--server", nodes[0].url, ...args]);
          assert.equal(r.code, 1, `${what}: ${r.stdout}`);
          assert.match(
            r.stderr,
            /^error: cannot reach raftd at https:\/\/127\.0\.0\.1:\d+: /,
            what,
          );
          assert.match(r.stderr, pattern, `${what}: ${r.stderr}`);
        }
        const plain = await cli(["status", "--server", `http://127.0.0.1:${nodes[0].httpPort}`]);
        assert.equal(plain.code, 1);
        const half = await cli(["status", "--server", nodes[0].url, "--cert-file", files.cert]);
        assert.equal(half.code, 2);
        assert.match(half.stderr, /--cert-file and --key-file go together/);
        // A client without a certificate does not get past the TLS handshake.
        const noCert = Deno.createHttpClient({ caCerts: [pem.ca] });
        await assert.rejects(fetch(`${nodes[0].url}/health`, { client: noCert } as RequestInit));
        noCert.close();
      });

      await step(t, "writes through followers are forwarded over HTTPS", async () => {
        const leader = await leaderOf(nodes);
        const followers = nodes.filter((n) => n !== leader);
        const put = await cli([
          "kv",
          "put",
          "secure",
          "yes",
          "--server",
          followers[0].url,
          ...withCert,
        ]);
        assert.equal(put.code, 0, put.stderr);
        const get = await cli(["kv", "get", "secure", "--server", followers[1].url, ...withCert]);
        assert.equal(get.stdout, "yes\n", get.stderr);
        const rows = await cli([
          "status",
          "--cluster",
          "--json",
          "--server",
          followers[0].url,
          ...withCert,
        ]);
        assert.equal(rows.code, 0, rows.stderr);
        assert.ok(JSON.parse(rows.stdout).every((r: { health: string }) => r.health === "ok"));
      });

      await step(t, "a backup streams from the leader through a follower over HTTPS", async () => {
        const leader = await leaderOf(nodes);
        const follower = nodes.find((n) => n !== leader)!;
        const file = `${dir}/backup.snap`;
        const save = await cli(["snapshot", "save", file, "--server", follower.url, ...withCert]);
        assert.equal(save.code, 0, save.stderr);
        const inspect = await cli(["snapshot", "inspect", file, "--json"]);
        assert.equal(inspect.code, 0, inspect.stderr);
        assert.equal(JSON.parse(inspect.stdout).server, leader.id);
      });

      await step(t, "HTTPS without client certificates: the CA is enough", async () => {
        plainTls.start(["--bootstrap"]);
        await waitFor("s1 healthy", () => plainTls.healthy());
        const r = await cli([
          "kv",
          "put",
          "k",
          "v",
          "--server",
          plainTls.url,
          "--ca-file",
          files.ca,
        ]);
        assert.equal(r.code, 0, r.stderr);
        const untrusted = await cli(["kv", "get", "k", "--server", plainTls.url]);
        assert.equal(untrusted.code, 1);
        const got = await http(
          `${plainTls.url}/v1/kv/k`,
          { client: plainTls.https } as RequestInit,
        );
        assert.equal(got.text, "v");
      });
      ok = true;
    } finally {
      if (!ok) { for (const n of all) console.error(`--- ${n.id} logs ---\n${n.logs()}`); }
      await Promise.all(all.map((n) => n.stop("SIGKILL")));
      client.close();
      plainTls.https?.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
