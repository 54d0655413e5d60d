/**
 * What a server's graceful shutdown takes and reports: `server.close()`'s
 * options and the `ShutdownReport` that it and `server.finished` resolve
 * with.
 *
 * @module
 */

import type { CloseOptions } from "./connection_options.ts";

/** Default for `serve`'s `shutdownTimeout`: 10 s. */
export const DEFAULT_SHUTDOWN_TIMEOUT = 10_000;

/**
 * Options of a server's shutdown: the close frame every connection gets
 * (default 1001 "Going away") and the one overall deadline.
 *
 * @example
 * ```ts
 * import type { ShutdownOptions } from "@wsstream/wsstream";
 * const options: ShutdownOptions = { closeCode: 1012, reason: "Restarting", timeout: 5_000 };
 * ```
 */
export interface ShutdownOptions extends CloseOptions {
  /**
   * How long, in ms, the whole shutdown may take (default: the server's
   * `shutdownTimeout`): handshakes under way and close handshakes still
   * going at the deadline are dropped.
   */
  timeout?: number | undefined;
}

/**
 * How each connection and handshake ended in a server's shutdown.
 *
 * @example
 * ```ts
 * import type { ShutdownReport } from "@wsstream/wsstream";
 * const summary = (r: ShutdownReport) =>
 *   `${r.clean}/${r.connections} closed cleanly, ${r.dropped} dropped`;
 * ```
 */
export interface ShutdownReport {
  /** The connections open when the shutdown began (or upgraded during it). */
  connections: number;
  /** Of those, how many finished the close handshake. */
  clean: number;
  /** How many ended otherwise before the deadline (the peer vanished, its own `closeTimeout`). */
  unclean: number;
  /** How many were still closing at the deadline, and were dropped. */
  dropped: number;
  /** Handshakes under way that were refused with 503. */
  handshakesRefused: number;
  /** Handshakes under way that were dropped (their request not yet read, or not done by the deadline). */
  handshakesDropped: number;
}
