/**
 * The write side both kinds of channel share (the socket channels and the
 * channel over streams): refusing writes once closed or failed, and the
 * waits of `drained()` for the queued bytes to go. Functions over the
 * channel's own fields, not an object it holds or a class it extends: a
 * socket channel's fields and size stay its own (see `_socket_channel.ts`),
 * and an idle channel holds no waiter list at all.
 *
 * @module
 */

/** A write failure, kept so that later writes and waits are refused with it. */
export interface WriteFailure {
  /** What the write failed with. */
  readonly error: unknown;
}

/** What decides whether a write may be queued and a drain wait is over. */
export interface WriteState {
  /** Bytes queued and not yet taken. */
  readonly bufferedAmount: number;
  /** Nothing more is read or written. */
  readonly closed: boolean;
  /** The write failure, once there is one. */
  readonly failure: WriteFailure | null;
}

/** One `drained()` waiting. */
export type DrainWaiter = PromiseWithResolvers<void>;

/**
 * The error of a write to a channel that is closed.
 *
 * @returns A new error.
 */
export const closedError = (): Error =>
  new Error("Cannot write to a closed transport");

/**
 * Throws unless a write may be queued.
 *
 * @param state The channel.
 * @throws The write failure, or {@link closedError} once closed.
 */
export function checkWritable(state: WriteState): void {
  if (state.failure !== null) throw state.failure.error;
  if (state.closed) throw closedError();
}

/**
 * What `drained()` answers at once, or `null` when it has to wait.
 *
 * @param state The channel.
 * @returns A settled promise, or `null`.
 */
export function drainedNow(state: WriteState): Promise<void> | null {
  if (state.failure !== null) return Promise.reject(state.failure.error);
  if (state.bufferedAmount === 0) return Promise.resolve();
  if (state.closed) return Promise.reject(closedError());
  return null;
}

/**
 * Adds a wait to `waiters`.
 *
 * @param waiters The channel's waits (created by the caller when it had none).
 * @returns The promise `drained()` returns.
 */
export function waitForDrain(waiters: DrainWaiter[]): Promise<void> {
  const waiter = Promise.withResolvers<void>();
  waiters.push(waiter);
  return waiter.promise;
}

/**
 * Settles the waits once nothing is queued, or nothing queued ever will be
 * sent (a failure, a close).
 *
 * @param state The channel.
 * @param waiters Its waits.
 * @returns Whether they were settled (the channel then drops them), or must
 * go on waiting.
 */
export function settleDrains(
  state: WriteState,
  waiters: DrainWaiter[],
): boolean {
  const { bufferedAmount, closed, failure } = state;
  if (bufferedAmount > 0 && failure === null && !closed) return false;
  for (const waiter of waiters) {
    if (failure !== null) waiter.reject(failure.error);
    else if (bufferedAmount > 0) waiter.reject(closedError());
    else waiter.resolve();
  }
  return true;
}
