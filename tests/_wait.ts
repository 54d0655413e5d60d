/** Bounded waiting for tests: nothing a test awaits may hang it. */

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Fails after `ms` instead of hanging; the timer never outlives the wait. */
export async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A test body bounded in time. */
export function bounded(
  body: () => Promise<void>,
  ms = 5_000,
): () => Promise<void> {
  return () => within(ms, body());
}

/** Runs `body`, returning how long it took in ms. */
export async function timed(body: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await body();
  return performance.now() - start;
}
