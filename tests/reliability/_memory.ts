/**
 * Memory readings for the bounded-memory tests and the soak: the process's
 * resident set and JavaScript heap, the same way on Deno and Bun
 * (`node:process`), sampled at intervals so a test can assert the peak of a
 * whole run, not just its end.
 *
 * @module
 */
import process from "node:process";

/** One reading, in bytes. */
export interface MemoryReading {
  /** Resident set size of the whole process. */
  rss: number;
  /** JavaScript heap in use. */
  heapUsed: number;
}

/** The process's memory now. */
export function readMemory(): MemoryReading {
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

/**
 * Runs a full garbage collection when the runtime lets us: `Bun.gc(true)` on
 * Bun, `gc()` on Deno when started with `--v8-flags=--expose-gc`.
 *
 * @returns Whether a collection ran.
 */
export function collectGarbage(): boolean {
  const g = globalThis as {
    Bun?: { gc(force: boolean): void };
    gc?: () => void;
  };
  if (g.Bun) {
    g.Bun.gc(true);
    return true;
  }
  if (typeof g.gc === "function") {
    g.gc();
    return true;
  }
  return false;
}

/** Bytes as MiB with one decimal: `"12.3 MiB"`. */
export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Samples memory every `intervalMs` from `start()` to `stop()`, keeping the
 * baseline (the reading at `start()`) and the peaks.
 */
export class MemorySampler {
  /** The reading when sampling started. */
  baseline: MemoryReading = { rss: 0, heapUsed: 0 };
  /** The highest readings seen. */
  peak: MemoryReading = { rss: 0, heapUsed: 0 };
  /** How many readings were taken. */
  samples = 0;
  readonly #intervalMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** @param intervalMs Milliseconds between readings. */
  constructor(intervalMs = 20) {
    this.#intervalMs = intervalMs;
  }

  /** Takes the baseline and starts sampling. */
  start(): void {
    this.baseline = readMemory();
    this.peak = { ...this.baseline };
    this.samples = 1;
    this.#timer = setInterval(() => this.sample(), this.#intervalMs);
  }

  /** Takes one reading now. */
  sample(): MemoryReading {
    const now = readMemory();
    this.peak.rss = Math.max(this.peak.rss, now.rss);
    this.peak.heapUsed = Math.max(this.peak.heapUsed, now.heapUsed);
    this.samples++;
    return now;
  }

  /** Takes a last reading and stops. Idempotent. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.sample();
  }

  /** The peak growth over the baseline. */
  get growth(): MemoryReading {
    return {
      rss: this.peak.rss - this.baseline.rss,
      heapUsed: this.peak.heapUsed - this.baseline.heapUsed,
    };
  }
}

/**
 * Waits until `progress()` has not changed for `quietMs`, polling every
 * `pollMs`; fails if that does not happen within `maxMs`.
 *
 * @returns The value it settled at.
 */
export async function waitForStall(
  progress: () => number,
  options: { quietMs: number; maxMs: number; pollMs?: number; what: string },
): Promise<number> {
  const poll = options.pollMs ?? 25;
  const start = performance.now();
  let value = progress();
  let since = performance.now();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, poll));
    const now = performance.now();
    const next = progress();
    if (next !== value) {
      value = next;
      since = now;
    } else if (now - since >= options.quietMs) {
      return value;
    }
    if (now - start > options.maxMs) {
      throw new Error(
        `${options.what} never stopped within ${options.maxMs} ms (at ${value})`,
      );
    }
  }
}

/** Waits until `progress()` exceeds `than`; fails after `maxMs`. */
export async function waitForProgress(
  progress: () => number,
  than: number,
  options: { maxMs: number; what: string },
): Promise<number> {
  const start = performance.now();
  while (progress() <= than) {
    if (performance.now() - start > options.maxMs) {
      throw new Error(
        `${options.what} made no progress past ${than} within ${options.maxMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return progress();
}
