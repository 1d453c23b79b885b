/**
 * The package's public surface: what each entry point of deno.json exports,
 * that wire-format internals stay private, that every type in a public
 * signature is exported (`deno doc --lint`), that every public class member
 * and function has an `@example`, and that `deno publish --dry-run` passes.
 */

import assert from "node:assert/strict";
import * as library from "../../mod.ts";
import * as testing from "../../testing.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
const ENTRY_POINTS: string[] = Object.values(config.exports as Record<string, string>);

async function deno(args: string[]): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(120_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    success: out.success,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

Deno.test("deno.json exports the library, the CLI and the testing helpers", () => {
  assert.deepEqual(config.exports, {
    ".": "./mod.ts",
    "./cli": "./cli/main.ts",
    "./testing": "./testing.ts",
  });
});

Deno.test("wire-format and other internals are not exported", () => {
  for (
    const name of [
      "encodeFrame",
      "writeFrameHeader",
      "FrameKind",
      "FrameDecoder",
      "FRAME_HEADER_BYTES",
      "DEFAULT_MAX_FRAME_BYTES",
      "MESSAGE_TYPE_CODES",
      "encodeMessageShared",
      "PROTOCOL_VERSION",
      "seededRandom",
      "compareSnapshots",
      "resolveReload",
    ]
  ) {
    assert.ok(!(name in library), `mod.ts exports ${name}`);
    assert.ok(!(name in testing), `testing.ts exports ${name}`);
  }
});

Deno.test("the library and testing entry points export what users build on", () => {
  for (
    const name of [
      "Raft",
      "DEFAULT_CONFIG",
      "validateConfig",
      "FileLogStore",
      "FileStableStore",
      "FileSnapshotStore",
      "TcpTransport",
      "encodeMessage",
      "decodeMessage",
      "TransportError",
      "NotLeaderError",
      "LeadershipLostError",
    ]
  ) {
    assert.ok(name in library, `mod.ts lacks ${name}`);
  }
  for (
    const name of [
      "formCluster",
      "TestCluster",
      "MemoryNetwork",
      "MemoryTransport",
      "MemoryLogStore",
      "MemoryStableStore",
      "MemorySnapshotStore",
    ]
  ) {
    assert.ok(name in testing, `testing.ts lacks ${name}`);
  }
});

Deno.test("importing the CLI entry point does not run the CLI", async () => {
  // `deno run jsr:@raftd/raftd/cli` runs it as the main module; importing it must not.
  const cli = await import("../../cli/main.ts");
  assert.equal(typeof cli.main, "function");
});

Deno.test("deno doc --lint passes on every entry point", async () => {
  const out = await deno(["doc", "--lint", ...ENTRY_POINTS]);
  assert.ok(out.success, out.stderr);
});

/** A member or function of the public API without an `@example`. */
interface Undocumented {
  module: string;
  name: string;
}

interface DocTag {
  kind: string;
  doc?: string;
}

interface DocMember {
  name: string;
  kind?: string;
  accessibility?: string;
  jsDoc?: { tags?: DocTag[] };
}

interface DocDeclaration {
  kind: string;
  jsDoc?: { tags?: DocTag[] };
  def: { methods?: DocMember[]; constructors?: DocMember[] };
}

interface DocNode {
  symbols: Array<{ name: string; declarations: DocDeclaration[] }>;
}

function hasExample(doc: { tags?: DocTag[] } | undefined): boolean {
  return (doc?.tags ?? []).some((t) => t.kind === "example");
}

function undocumented(nodes: Record<string, DocNode>): Undocumented[] {
  const missing: Undocumented[] = [];
  for (const [url, node] of Object.entries(nodes)) {
    const module = url.slice(url.lastIndexOf("/") + 1);
    for (const symbol of node.symbols) {
      for (const declaration of symbol.declarations) {
        if (declaration.kind === "function" && !hasExample(declaration.jsDoc)) {
          missing.push({ module, name: symbol.name });
        }
        if (declaration.kind !== "class") continue;
        const classExamples = (declaration.jsDoc?.tags ?? [])
          .filter((t) => t.kind === "example").map((t) => t.doc ?? "").join("\n");
        for (const method of declaration.def.methods ?? []) {
          if (method.accessibility === "private" || hasExample(method.jsDoc)) continue;
          missing.push({ module, name: `${symbol.name}.${method.name}` });
        }
        for (const constructor of declaration.def.constructors ?? []) {
          if (constructor.accessibility === "private" || hasExample(constructor.jsDoc)) continue;
          // A class whose own example constructs it documents its constructor too.
          if (classExamples.includes(`new ${symbol.name}(`)) continue;
          missing.push({ module, name: `${symbol.name}.constructor` });
        }
      }
    }
  }
  return missing;
}

Deno.test("every public function and class member has an @example", async () => {
  const out = await deno(["doc", "--json", ...ENTRY_POINTS]);
  assert.ok(out.success, out.stderr);
  const missing = undocumented(JSON.parse(out.stdout).nodes);
  assert.deepEqual(missing, []);
});

Deno.test("deno publish --dry-run passes without a warning", async () => {
  const out = await deno(["publish", "--dry-run", "--allow-dirty"]);
  assert.ok(out.success, `${out.stdout}\n${out.stderr}`);
  assert.match(out.stdout + out.stderr, /Dry run complete/);
  // e.g. unanalyzable-dynamic-import: JSR would publish an import it cannot rewrite.
  assert.doesNotMatch(out.stdout + out.stderr, /^warning\[/m);
});

Deno.test("deno task raftd and demo run with raftd's V8 flags, as the README says", async () => {
  const { RAFTD_V8_FLAGS } = await import("../../src/platform/process.ts");
  const flag = `--v8-flags=${RAFTD_V8_FLAGS}`;
  for (const task of ["raftd", "demo"]) {
    assert.ok(config.tasks[task].includes(` ${flag} `), `task ${task}: ${config.tasks[task]}`);
  }
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  assert.match(readme, new RegExp(`compile -A ${flag} `));
});

Deno.test("the CLI run from a registry URL starts its children from the same URL", async () => {
  // `deno run -A jsr:@raftd/raftd/cli demo` runs main.ts from https://jsr.io/…; `demo`
  // starts three `serve` children with the same module.
  const { RAFTD_V8_FLAGS, selfCommand } = await import("../../src/platform/process.ts");
  const url = "https://jsr.io/@raftd/raftd/0.1.0/cli/main.ts";
  assert.deepEqual(selfCommand(url), {
    command: Deno.execPath(),
    args: ["run", "-A", `--v8-flags=${RAFTD_V8_FLAGS}`, url],
  });
});
