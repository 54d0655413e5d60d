/**
 * `Glob`: the small glob matcher that origins, routes and the registry
 * share, with Tcl's `string match` wildcards (tcllib's `websocket::live`
 * matches paths that way).
 *
 * @module
 */

/** Characters with a meaning in a `RegExp` (with the `u` flag, only these may be escaped). */
const REGEXP_SYNTAX = /[\\^$.*+?()[\]{}|/]/g;

/**
 * A compiled glob pattern: `*` matches any run of characters (`/` included,
 * as in Tcl's `string match`), `?` any one character, and `\` makes the
 * next character literal. Everything else matches itself. A match gives
 * what each wildcard matched, in order, so a route's glob doubles as its
 * parameters.
 *
 * Globs also have an order of specificity ({@link Glob.compare}): more
 * literal characters first, then fewer `*`, so `/chat/lobby` comes before
 * `/chat/*`, which comes before `*`.
 *
 * @example Matching and captures
 * ```ts
 * import { Glob } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const room = new Glob("/rooms/*\/users/?");
 * assert.deepEqual(room.match("/rooms/lobby/users/7"), ["lobby", "7"]);
 * assert.equal(room.match("/rooms/lobby"), null);
 * assert.ok(new Glob("*.EXAMPLE.com", { ignoreCase: true }).test("a.example.com"));
 * assert.ok(new Glob("a\\*").test("a*") && !new Glob("a\\*").test("ab"));
 * ```
 */
export class Glob {
  /** The pattern as given. */
  readonly pattern: string;
  /** How many characters of the pattern match only themselves. */
  readonly literals: number;
  /** How many `*` it has. */
  readonly stars: number;
  /** How many `?` it has. */
  readonly singles: number;
  readonly #regexp: RegExp;

  /**
   * Compiles `pattern`.
   *
   * @param pattern The glob.
   * @param options `ignoreCase`: match letters in either case (default false).
   * @throws {TypeError} If `pattern` is not a string.
   */
  constructor(pattern: string, options: { ignoreCase?: boolean } = {}) {
    if (typeof pattern !== "string") {
      throw new TypeError(
        `A glob pattern must be a string, got ${typeof pattern}`,
      );
    }
    let source = "";
    let literals = 0;
    let stars = 0;
    let singles = 0;
    for (let i = 0; i < pattern.length; i++) {
      let char = pattern[i]!;
      if (char === "*") {
        stars++;
        source += "([^]*?)";
        continue;
      }
      if (char === "?") {
        singles++;
        source += "([^])";
        continue;
      }
      if (char === "\\" && i + 1 < pattern.length) char = pattern[++i]!;
      literals++;
      source += char.replace(REGEXP_SYNTAX, "\\$&");
    }
    this.pattern = pattern;
    this.literals = literals;
    this.stars = stars;
    this.singles = singles;
    this.#regexp = new RegExp(`^${source}$`, options.ignoreCase ? "iu" : "u");
  }

  /**
   * Matches `text` against the whole pattern.
   *
   * @param text What to match.
   * @returns What each wildcard matched, in order, or `null` for no match.
   */
  match(text: string): string[] | null {
    const found = this.#regexp.exec(text);
    return found === null ? null : found.slice(1);
  }

  /**
   * Whether `text` matches the whole pattern.
   *
   * @param text What to match.
   * @returns `true` on a match.
   */
  test(text: string): boolean {
    return this.#regexp.test(text);
  }

  /**
   * Orders globs most specific first, for `Array.prototype.sort`: more
   * literal characters, then fewer `*`, then fewer `?`; equal otherwise.
   *
   * @param a One glob.
   * @param b Another.
   * @returns Negative when `a` is the more specific.
   */
  static compare(a: Glob, b: Glob): number {
    return b.literals - a.literals || a.stars - b.stars ||
      a.singles - b.singles;
  }
}
