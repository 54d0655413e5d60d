/**
 * The data a server's `onUpgrade` attaches to a connection, kept beside it
 * rather than in it: most connections carry none, and a field would grow
 * every one of them (`tests/connection_size_test.ts` holds their size).
 *
 * @module
 */

const data = new WeakMap<object, unknown>();

/**
 * The data attached to `connection`, or `undefined`.
 *
 * @param connection The connection.
 * @returns Its data.
 */
export function connectionData(connection: object): unknown {
  return data.get(connection);
}

/**
 * Attaches `value` to `connection` for as long as the connection lives.
 *
 * @param connection The connection.
 * @param value Its data (`undefined` attaches nothing).
 */
export function attachConnectionData(connection: object, value: unknown): void {
  if (value !== undefined) data.set(connection, value);
}

/** Per-connection listeners for the control frames a connection receives. */
export interface ControlListener {
  /** A ping received (already answered). */
  ping?: ((payload: Uint8Array) => void) | undefined;
  /** A pong received. */
  pong?: ((payload: Uint8Array) => void) | undefined;
}

const listeners = new WeakMap<object, ControlListener>();

/**
 * The control listener set on `connection`, if any.
 *
 * @param connection The connection.
 * @returns Its listener.
 */
export function controlListenerOf(
  connection: object,
): ControlListener | undefined {
  return listeners.get(connection);
}

/**
 * Sets (or, with `undefined`, removes) `connection`'s control listener.
 *
 * @param connection The connection.
 * @param listener What to call with its pings and pongs.
 */
export function setControlListener(
  connection: object,
  listener: ControlListener | undefined,
): void {
  if (listener === undefined) listeners.delete(connection);
  else listeners.set(connection, listener);
}
