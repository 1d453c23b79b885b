/**
 * `raftd snapshot`: compaction now (bare), and backups: `save`, `inspect`,
 * `restore`.
 *
 * @module
 */

import { CorruptionError } from "../src/errors.ts";
import { writeStdout } from "../src/platform/process.ts";
import {
  BackupFormatError,
  type BackupHeader,
  KV_STATE_FORMAT,
  readBackup,
} from "../src/server/backup_file.ts";
import { fileChunks, writeFileAtomically } from "../src/server/backup_io.ts";
import { readKvSnapshotRecords } from "../src/server/kv_snapshot.ts";
import { restoreBackup } from "../src/server/restore.ts";
import { checkHostPort, checkServerId, normalizeHttpUrl } from "../src/server/validate.ts";
import {
  bool,
  CLIENT_OPTIONS,
  CliError,
  HELP_OPTION,
  helpText,
  type OptionSpec,
  parse,
  str,
  UsageError,
} from "./args.ts";
import { clientFor } from "./client.ts";
import { print, table } from "./output.ts";

const COMMAND = "raftd snapshot";
const COMPACT_OPTIONS = { ...CLIENT_OPTIONS, ...HELP_OPTION };
const SAVE_OPTIONS: Record<string, OptionSpec> = {
  stale: {
    type: "boolean",
    help: "take it from the node given by --server even if it is not the leader " +
      "(default: the leader, with every acknowledged write)",
  },
  ...CLIENT_OPTIONS,
  ...HELP_OPTION,
};
const INSPECT_OPTIONS: Record<string, OptionSpec> = {
  json: CLIENT_OPTIONS.json,
  ...HELP_OPTION,
};
const RESTORE_OPTIONS: Record<string, OptionSpec> = {
  data: { type: "string", arg: "DIR", help: "the data directory to create (new or empty)" },
  id: { type: "string", arg: "ID", help: "server id of the new cluster's first server" },
  raft: { type: "string", arg: "HOST:PORT", help: "its Raft address, as peers reach it" },
  http: {
    type: "string",
    arg: "HOST:PORT",
    help: "its HTTP API address (or a URL such as https://host:port)",
  },
  json: CLIENT_OPTIONS.json,
  ...HELP_OPTION,
};

/** Help text of `raftd snapshot`. */
const SNAPSHOT_HELP: string = helpText(
  `${COMMAND} [save FILE | inspect FILE | restore FILE --data DIR --id ID --raft HOST:PORT --http HOST:PORT] [options]`,
  "Snapshots and backups.\n" +
    "  (no subcommand)  take a snapshot on the node now and compact its log\n" +
    "  save FILE        write a backup of the cluster's state to FILE (atomically)\n" +
    "  inspect FILE     check a backup file and print what it holds\n" +
    "  restore FILE     build DIR for a new one-node cluster holding the backup's state;\n" +
    "                   then: raftd serve --id ID --raft HOST:PORT --http HOST:PORT --data DIR\n" +
    "                   (no --bootstrap), and let other servers --join it",
  { ...SAVE_OPTIONS, ...RESTORE_OPTIONS },
);

function help(): number {
  writeStdout(SNAPSHOT_HELP);
  return 0;
}

/** The one FILE argument of a subcommand. */
function fileArg(command: string, positionals: string[]): string {
  const file = positionals[0];
  if (file === undefined || file === "") {
    throw new UsageError(`${command}: missing FILE (see ${COMMAND} --help)`);
  }
  return file;
}

/** A flag validated by one of the API's validators, as a usage error. */
function checked<T>(command: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message}`);
  }
}

function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function configurationRows(header: BackupHeader): string {
  const rows = [["ID", "SUFFRAGE", "RAFT"]];
  for (const s of header.configuration.servers) rows.push([s.id, s.suffrage, s.address]);
  return table(rows).split("\n").map((l) => `  ${l}`.trimEnd()).join("\n");
}

async function compact(argv: string[]): Promise<number> {
  const p = parse(COMMAND, argv, COMPACT_OPTIONS, 0);
  if (bool(p, "help")) return help();
  const client = await clientFor(COMMAND, p);
  const body = await client.json<
    {
      index: number;
      term?: number;
      id?: string;
      size?: number;
      appliedIndex?: number;
      unchanged?: boolean;
    }
  >("POST", "/v1/snapshot");
  print(
    bool(p, "json"),
    body,
    () =>
      body.unchanged
        ? `nothing new to compact: the snapshot at index ${body.index} already holds everything applied`
        : `snapshot taken at index ${body.index} (term ${body.term}${
          body.size !== undefined ? `, ${body.size} bytes` : ""
        })`,
  );
  return 0;
}

async function save(argv: string[]): Promise<number> {
  const command = `${COMMAND} save`;
  const p = parse(command, argv, SAVE_OPTIONS, 1);
  if (bool(p, "help")) return help();
  const file = fileArg(command, p.positionals);
  const client = await clientFor(command, p);
  const res = await client.request(
    "GET",
    `/v1/snapshot${bool(p, "stale") ? "?consistency=stale" : ""}`,
    undefined,
    [],
    { stream: true },
  );
  let header: BackupHeader;
  let bytes: number;
  try {
    const backup = await readBackup(res.body ?? (async function* () {})());
    header = backup.header;
    bytes = await writeFileAtomically(
      file,
      (async function* () {
        yield backup.headerBytes;
        yield* backup.state;
      })(),
    );
  } catch (e) {
    if (e instanceof BackupFormatError) {
      throw new CliError(
        `${command}: the backup from ${client.server} is damaged or incomplete (${e.message}); ` +
          `${file} was not written`,
      );
    }
    throw new CliError(`${command}: ${file} was not written: ${describeError(e)}`);
  }
  print(
    bool(p, "json"),
    { file, bytes, ...header },
    () =>
      `saved ${file}: index ${header.index}, term ${header.term}, ${header.size} bytes of state ` +
      `(${header.checksum}), from ${header.server}`,
  );
  return 0;
}

async function inspect(argv: string[]): Promise<number> {
  const command = `${COMMAND} inspect`;
  const p = parse(command, argv, INSPECT_OPTIONS, 1);
  if (bool(p, "help")) return help();
  const file = fileArg(command, p.positionals);
  let header: BackupHeader;
  let keys: number | undefined;
  try {
    const backup = await readBackup(fileChunks(file));
    header = backup.header;
    if (header.stateFormat === KV_STATE_FORMAT) {
      // Parse the records too: a backup whose bytes verify but do not parse is no backup.
      keys = 0;
      for await (const r of readKvSnapshotRecords(backup.state)) if (r.type === "kv") keys++;
    } else {
      for await (const _ of backup.state) { /* checked while streaming */ }
    }
  } catch (e) {
    const what = e instanceof BackupFormatError || e instanceof CorruptionError
      ? "not a valid raftd backup"
      : "cannot read it";
    throw new CliError(`${command}: ${file}: ${what}: ${describeError(e)}`);
  }
  const h = header;
  print(
    bool(p, "json"),
    { file, ...h, ...(keys !== undefined ? { keys } : {}), verified: true },
    () =>
      [
        `file:          ${file}`,
        `index:         ${h.index}`,
        `term:          ${h.term}`,
        `size:          ${h.size} bytes`,
        `checksum:      ${h.checksum} (verified)`,
        ...(keys !== undefined ? [`keys:          ${keys}`] : []),
        `state format:  ${h.stateFormat} (backup format ${h.format})`,
        `cluster id:    ${h.clusterId ?? "none"}`,
        `taken by:      ${h.server} at ${h.createdAt} (raftd ${h.version})`,
        `configuration (index ${h.configurationIndex}):`,
        configurationRows(h),
      ].join("\n"),
  );
  return 0;
}

async function restore(argv: string[]): Promise<number> {
  const command = `${COMMAND} restore`;
  const p = parse(command, argv, RESTORE_OPTIONS, 1);
  if (bool(p, "help")) return help();
  const file = fileArg(command, p.positionals);
  const need = (name: string) => {
    const v = str(p, name);
    if (v === undefined || v === "") {
      throw new UsageError(`${command}: --${name} is required (see ${COMMAND} --help)`);
    }
    return v;
  };
  const dataDir = need("data");
  const id = checked(command, () => checkServerId(need("id"), "--id"));
  const raft = checked(command, () => checkHostPort(need("raft"), "--raft"));
  const httpFlag = need("http");
  const httpUrl = checked(command, () => normalizeHttpUrl(httpFlag, "--http"));
  let result;
  try {
    result = await restoreBackup({ file, dataDir, id, raftAddress: raft, httpUrl });
  } catch (e) {
    throw new CliError(`${command}: ${describeError(e)} (nothing was restored)`);
  }
  const h = result.header;
  print(
    bool(p, "json"),
    {
      dataDir,
      id,
      raft,
      http: httpUrl,
      clusterId: result.clusterId,
      keys: result.keys,
      index: h.index,
      term: h.term,
      fromClusterId: h.clusterId,
    },
    () =>
      `restored ${result.keys} keys (index ${h.index}, term ${h.term}) into ${dataDir}: ` +
      `a new one-node cluster ${result.clusterId}.\n` +
      `Start it with: raftd serve --id ${id} --raft ${raft} --http ${httpFlag} --data ${dataDir}`,
  );
  return 0;
}

/**
 * Run `raftd snapshot ...`.
 *
 * @example
 * ```ts ignore
 * import { snapshot } from "./snapshot.ts";
 * await snapshot(["save", "backup.snap", "--server", "http://127.0.0.1:8001"]);
 * ```
 */
export async function snapshot(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "save":
      return await save(rest);
    case "inspect":
      return await inspect(rest);
    case "restore":
      return await restore(rest);
    case "help":
      return help();
    default:
      if (sub !== undefined && !sub.startsWith("-")) {
        throw new UsageError(
          `${COMMAND}: unknown subcommand ${
            JSON.stringify(sub)
          }; expected save, inspect or restore (or none, to compact now)`,
        );
      }
      return await compact(argv);
  }
}
