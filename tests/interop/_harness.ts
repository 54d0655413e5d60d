/**
 * The test harness of the interop suite: bounded tests with deferred
 * cleanup, registered so that each runtime checks what it can.
 *
 * On Deno a test is a `Deno.test` with the op and resource sanitizers ON:
 * Deno's `node:test` shim runs without them (and Deno 2.9's own tests too,
 * unless asked), and here they are the point, as they prove every socket,
 * timer and subprocess a test opened was closed by its end. On Bun a test is
 * a `node:test` test, which `bun test` runs.
 */
import { test as nodeTest } from "node:test";

/** Whether Deno runs this (else Bun: the suite runs on nothing else). */
export const IS_DENO = typeof Deno !== "undefined";
/** The running runtime's name, for test names. */
export const RUNTIME = IS_DENO ? "deno" : "bun";

/** Registers `cleanup` to run when the test ends, pass or fail, last first. */
export type Defer = (cleanup: () => unknown) => void;

/** The longest a cleanup may take before the test fails for it. */
const CLEANUP_TIMEOUT = 5_000;

/** Fails after `ms` instead of hanging; the timer never outlives the race. */
export async function within<T>(
  ms: number,
  promise: Promise<T>,
  what = "the operation",
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} timed out after ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Registers a test whose body must finish within `ms`; whatever it deferred
 * runs afterwards, each cleanup bounded too.
 */
export function interopTest(
  name: string,
  body: (defer: Defer) => Promise<void>,
  ms = 15_000,
): void {
  const fn = async () => {
    const cleanups: (() => unknown)[] = [];
    let failure: unknown = null;
    try {
      await within(ms, body((cleanup) => cleanups.push(cleanup)), name);
    } catch (error) {
      failure = error;
    }
    for (const cleanup of cleanups.reverse()) {
      try {
        await within(
          CLEANUP_TIMEOUT,
          Promise.resolve().then(cleanup),
          `cleanup of "${name}"`,
        );
      } catch (error) {
        failure ??= error;
      }
    }
    if (failure !== null) throw failure;
  };
  if (IS_DENO) {
    // Deno 2.9 leaves the sanitizers off unless asked (`--sanitize-ops`,
    // `--sanitize-resources`, or these options): ask, whatever the flags.
    Deno.test({ name, fn, sanitizeOps: true, sanitizeResources: true });
  } else nodeTest(name, { timeout: ms + 2 * CLEANUP_TIMEOUT }, fn);
}

/**
 * A queue of values that arrive by callback, taken in order with a bound on
 * the wait.
 */
export class Inbox<T> {
  readonly #items: T[] = [];
  readonly #waiting: ((item: T) => void)[] = [];

  /** Adds an item, handing it to the oldest waiter if there is one. */
  push(item: T): void {
    const waiter = this.#waiting.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  /** Takes the next item, waiting up to `ms` for it. */
  next(ms = 5_000, what = "the next item"): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    let waiter!: (item: T) => void;
    const arrived = new Promise<T>((resolve) => {
      waiter = resolve;
      this.#waiting.push(resolve);
    });
    return within(ms, arrived, `waiting for ${what}`).finally(() => {
      const at = this.#waiting.indexOf(waiter);
      if (at >= 0) this.#waiting.splice(at, 1);
    });
  }

  /** How many items are queued. */
  get size(): number {
    return this.#items.length;
  }
}
