/**
 * Trimming HTTP's optional whitespace, shared by the head parser and the
 * handshake's header-value parsers. Private: not re-exported by `mod.ts`.
 *
 * @module
 */

/**
 * Strips optional whitespace (SP, HTAB) from both ends. A loop, not
 * `replace(/[ \t]+$/)`, which backtracks quadratically on a long run of
 * spaces inside a value.
 */
export function trimOWS(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === " " || text[start] === "\t")) start++;
  while (end > start && (text[end - 1] === " " || text[end - 1] === "\t")) {
    end--;
  }
  return text.slice(start, end);
}
