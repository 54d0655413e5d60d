// @ts-check
/**
 * The deflate benchmark's compressible text: lines of JSON records with
 * varying numbers (as an API's messages are), deterministic, of `size`
 * characters. It deflates to roughly a third, not to nothing, as a
 * repeated phrase would.
 *
 * @module
 */

/**
 * @param {number} size characters (all ASCII, so as many bytes)
 * @returns {string}
 */
export function compressibleText(size) {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  const names = ["ada", "grace", "alan", "edsger", "barbara", "donald"];
  let text = "";
  for (let id = 0; text.length < size; id++) {
    const n = next();
    text += JSON.stringify({
      id,
      user: names[n % names.length],
      score: n % 100000,
      active: n % 3 === 0,
      tags: ["deflate", "bench"],
    }) + "\n";
  }
  return text.slice(0, size);
}
