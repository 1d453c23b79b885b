/**
 * Replace a small file atomically and durably: write a temp file, fsync it,
 * rename it over the target, fsync the directory. After a crash the target
 * holds either the old or the new content, never a mix.
 *
 * @module
 */

import type { FileSystem } from "../platform/fs.ts";

/**
 * Write `data` to `dir/name` atomically and durably, through `dir/name.tmp`.
 *
 * @param fs The file system.
 * @param dir Directory of the file.
 * @param name File name within `dir`.
 * @param data The new content.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_file.ts";
 * import { defaultFileSystem } from "../platform/fs.ts";
 * const fs = defaultFileSystem();
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(fs, dir, "state", new Uint8Array([1, 2]));
 * console.log((await fs.readFile(`${dir}/state`)).length); // 2
 * await fs.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  fs: FileSystem,
  dir: string,
  name: string,
  data: Uint8Array,
): Promise<void> {
  const tmp = `${dir}/${name}.tmp`;
  const f = await fs.open(tmp, { write: true, create: true, truncate: true });
  try {
    await f.write(data);
    await f.sync();
  } finally {
    await f.close();
  }
  await fs.rename(tmp, `${dir}/${name}`);
  await fs.syncDir(dir);
}
