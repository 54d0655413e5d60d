/**
 * Seeded randomness for the fuzzer: every case is reproducible from the run's
 * seed, its target and its index, and from nothing else (no `Math.random`,
 * no `crypto` in what a case generates).
 *
 * @module
 */
import { pick, prng, randomBytes, randomInt } from "../_frames.ts";

/**
 * The seed of one case: the run's seed, the target's tag and the case index
 * mixed with splitmix32's finalizer, so neighbouring indices get unrelated
 * streams.
 */
export function caseSeed(seed: number, tag: number, index: number): number {
  let z = (seed ^ Math.imul(tag + 1, 0x9e3779b9) ^
    Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/** A seeded source of random choices (mulberry32 underneath). */
export class Random {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = prng(seed);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.#next();
  }

  /** An integer from `min` to `max`, both included. */
  int(min: number, max: number): number {
    return randomInt(this.#next, min, max);
  }

  /** `true` with probability `p`. */
  chance(p: number): boolean {
    return this.#next() < p;
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    return pick(this.#next, items);
  }

  /** `length` random bytes. */
  bytes(length: number): Uint8Array {
    return randomBytes(this.#next, length);
  }

  /** One of the values, each as likely as its weight. */
  weighted<T>(entries: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [weight] of entries) total += weight;
    let at = this.#next() * total;
    for (const [weight, value] of entries) {
      at -= weight;
      if (at < 0) return value;
    }
    return entries[entries.length - 1]![1];
  }

  /** A 4-byte masking key; now and then all zeros (masking that changes nothing). */
  maskKey(): Uint8Array {
    return this.chance(0.05) ? new Uint8Array(4) : this.bytes(4);
  }
}
