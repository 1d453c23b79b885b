/**
 * Printing command results: human-readable text by default, JSON with `--json`.
 *
 * @module
 */

import { writeStdout } from "../src/platform/process.ts";

/**
 * Print `data` as JSON when `json`, otherwise the text `human()` returns.
 *
 * @example
 * ```ts
 * import { print } from "./output.ts";
 * print(false, { index: 3 }, () => "OK (index 3)");
 * ```
 */
export function print(json: boolean, data: unknown, human: () => string): void {
  const text = json ? JSON.stringify(data, null, 2) : human();
  writeStdout(text.endsWith("\n") ? text : text + "\n");
}

/**
 * Lay out rows as left-aligned columns.
 *
 * @example
 * ```ts
 * import { table } from "./output.ts";
 * console.log(table([["ID", "STATE"], ["n1", "leader"]]));
 * ```
 */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, c.length));
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  "))
    .join("\n");
}
