/**
 * The handshake's accept key three ways, 100,000 keys each: Web Crypto's
 * SHA-1 awaited once per key (how `computeAccept` worked before
 * `src/sha1.ts`), `computeAccept` now, and `computeAcceptSync`. Prints the
 * time per key; the median of 5 rounds, after a warm-up round.
 *
 * ```sh
 * deno run bench/sha1_bench.ts
 * bun bench/sha1_bench.ts
 * ```
 *
 * @module
 */

import {
  computeAccept,
  computeAcceptSync,
  generateKey,
  WEBSOCKET_GUID,
} from "../src/handshake.ts";

const KEYS = 100_000;
const ROUNDS = 5;

/** The accept value as `computeAccept` computed it with Web Crypto. */
async function webCryptoAccept(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(key + WEBSOCKET_GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** Computes the accept value of every key, in order; returns their length. */
type Run = (keys: string[]) => Promise<number> | number;

const awaitEach =
  (accept: (key: string) => Promise<string>): Run => async (keys) => {
    let length = 0;
    for (const key of keys) length += (await accept(key)).length;
    return length;
  };

const cases: [string, Run][] = [
  ["Web Crypto, awaited", awaitEach(webCryptoAccept)],
  ["computeAccept, awaited", awaitEach(computeAccept)],
  ["computeAcceptSync", (keys) => {
    let length = 0;
    for (const key of keys) length += computeAcceptSync(key).length;
    return length;
  }],
];

const keys = Array.from({ length: KEYS }, () => generateKey());
// Each way must give the same values, or its time means nothing.
for (const key of keys.slice(0, 100)) {
  const expected = await webCryptoAccept(key);
  if (
    await computeAccept(key) !== expected || computeAcceptSync(key) !== expected
  ) {
    throw new Error(`The accept values for ${key} differ`);
  }
}

const runtime = "Bun" in globalThis ? "Bun" : "Deno";
console.log(`${runtime}: ns per accept key, median of ${ROUNDS} rounds`);
for (const [name, run] of cases) {
  const times: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const start = performance.now();
    // Using the result keeps the work from being optimised away.
    if (await run(keys) !== 28 * KEYS) throw new Error(`${name} went wrong`);
    // Round 0 warms up (JIT) and is not counted.
    if (round > 0) times.push((performance.now() - start) * 1e6 / KEYS);
  }
  times.sort((a, b) => a - b);
  console.log(`  ${name.padEnd(24)} ${times[ROUNDS >> 1]!.toFixed(0)} ns`);
}
