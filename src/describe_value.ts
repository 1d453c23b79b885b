/**
 * How error messages show a value that was given: its type and the value, so
 * `"1500"` (a string) and `1500` (a number) never read the same.
 *
 * @module
 */

/**
 * Describes `value` for an error message: `string "1500"`, `number 1.5`,
 * `boolean true`, `null`, `undefined`, `an array`, `an object`, `a function`.
 *
 * @example
 * ```ts
 * import { describeValue } from "./describe_value.ts";
 * console.log(describeValue("1500")); // string "1500"
 * console.log(describeValue(1500)); // number 1500
 * ```
 */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "undefined":
      return "undefined";
    case "string":
      return `string ${JSON.stringify(value)}`;
    case "number":
    case "boolean":
      return `${typeof value} ${String(value)}`;
    case "bigint":
      return `bigint ${String(value)}n`;
    case "symbol":
      return `symbol ${String(value.description ?? "")}`;
    case "function":
      return "a function";
    default:
      return Array.isArray(value) ? "an array" : "an object";
  }
}
