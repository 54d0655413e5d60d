/**
 * How a connection ends: the close handshake and its deadline, a failure
 * (the peer broke the protocol, the socket failed), and the drop of the
 * socket after it. A connection makes its {@link ConnectionEnd} only when
 * its end begins (a close frame sent or received, a failure, the end of the
 * stream), so an open connection holds none of this.
 *
 * The connection's side of it is a {@link ConnectionEndHost}: what the end
 * needs of the connection (its protocol, its channel, its inbox, its send
 * queue), implemented by the connection's events object.
 *
 * @module
 */

import type { ByteChannel } from "./byte_channel.ts";
import { DEFAULT_CLOSE_REASONS, encodeClosePayload } from "./close.ts";
import type {
  CloseOptions,
  ConnectionSettings,
  ConnectionState,
} from "./connection_options.ts";

export type { ConnectionState } from "./connection_options.ts";
import { ConnectionClosedError, ProtocolError } from "./errors.ts";
import type { Protocol } from "./protocol.ts";
import { type Deadline, DeadlineQueues } from "./_deadline_queue.ts";

/**
 * The code and reason of one close frame.
 *
 * @example
 * ```ts
 * import type { CloseFrame } from "@wsstream/wsstream";
 * const frame: CloseFrame = { closeCode: 1001, reason: "Going away" };
 * ```
 */
export interface CloseFrame {
  /** The close code (1005: the frame carried none). */
  closeCode: number;
  /** The close reason ("" for none). */
  reason: string;
}

/**
 * How a connection ended, as `closed` and `close()` report it.
 *
 * `closeCode` and `reason` are the peer's close frame's when one came (1005
 * when it carried no code, as WHATWG's `WebSocketStream` reports them); else
 * the code we failed the connection with (1002, 1007, 1009 …, with the
 * failure's message as reason); else 1006, abnormal closure. `sent` and
 * `received` are both sides' close frames as they were, so that nobody has
 * to guess which side a code came from.
 *
 * @example
 * ```ts
 * import type { CloseInfo } from "@wsstream/wsstream";
 * const info: CloseInfo = {
 *   closeCode: 1000,
 *   reason: "",
 *   wasClean: true,
 *   sent: { closeCode: 1000, reason: "bye" },
 *   received: { closeCode: 1000, reason: "" },
 * };
 * ```
 */
export interface CloseInfo extends CloseFrame {
  /** Whether the close handshake completed (both close frames, then TCP closed). */
  wasClean: boolean;
  /** The close frame we sent, if we sent one. */
  sent: CloseFrame | null;
  /** The close frame the peer sent, if one came. */
  received: CloseFrame | null;
}

/** What a {@link ConnectionEnd} needs of its connection. */
export interface ConnectionEndHost {
  readonly protocol: Protocol;
  readonly channel: ByteChannel;
  readonly settings: ConnectionSettings;
  /** The connection's state; the end moves it on. */
  state: ConnectionState;
  /** The running keepalive or drop deadline (the drop replaces keepalive's). */
  deadline: Deadline<unknown> | null;
  /** Messages received and not yet taken by the application. */
  readonly queued: number;
  /** Whether the application stopped reading, or the inbox ended. */
  readonly readableDone: boolean;
  /** Runs `task` once every send queued before it has gone out. */
  afterSends(task: () => void): void;
  /** Reads on whether or not the inbox has room (the close frame may be behind). */
  drainUntilClosed(): void;
  /** No more messages: `null` ends iteration cleanly, an error makes it throw. */
  endInbox(error: unknown): void;
  /** Fails the pings waiting for their pong, if any, with `error()`. */
  rejectPings(error: () => ConnectionClosedError): void;
  /** Hands the corked frames to the channel. */
  uncork(): void;
  /** Drops the corked frames: the socket is gone. */
  discardCorked(): void;
  /** The connection is over: it leaves its open set, `closed` settles. */
  settled(info: CloseInfo): void;
}

/** The close handshake, failures and the drop, for one connection. */
export class ConnectionEnd {
  /** How the connection ended, once it has. */
  info: CloseInfo | null = null;
  /** The close frame we sent, once sent. */
  sent: CloseFrame | null = null;
  /** The close frame the peer sent, once received. */
  received: CloseFrame | null = null;
  /** The close we asked for (`close()`), while it waits for its turn. */
  requested: CloseFrame | null = null;
  /** The peer broke the protocol: the close frame waits for the inbox. */
  failing: ProtocolError | null = null;
  #closeTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #failTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #failSoonTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  #failScheduled = false;
  #settled = false;

  /** @param host The connection's side. */
  constructor(readonly host: ConnectionEndHost) {}

  /** Whether the socket is closed and `closed` settled (or only lingering). */
  get settled(): boolean {
    return this.#settled;
  }

  /**
   * Starts the close handshake with our close frame, sent once every
   * message queued before it has gone out (RFC 6455 §7.1.2).
   */
  close(code: number, reason: string): void {
    const host = this.host;
    host.state = "closing";
    this.requested = { closeCode: code, reason };
    this.#armCloseTimer();
    host.afterSends(() => {
      if (this.info !== null) return;
      if (host.protocol.close(code, reason)) {
        this.sent = { closeCode: code, reason };
        host.drainUntilClosed();
      }
    });
  }

  /**
   * A streamed message failed half-way (its source threw, or a chunk could
   * not be sent): it can never be finished, and nothing else can be sent
   * before it is, so close with 1011 at once, as Python's websockets does.
   */
  abandonMessage(): void {
    const { host } = this;
    if (this.info !== null || host.protocol.state !== "open") return;
    const reason = "Error in fragmented message";
    host.state = "closing";
    this.requested = { closeCode: 1011, reason };
    this.#armCloseTimer();
    host.protocol.close(1011, reason);
    this.sent = this.requested;
    host.drainUntilClosed();
  }

  /** The peer's close frame came (the protocol has echoed it if we had not closed). */
  peerClosed(code: number, reason: string): void {
    const { host } = this;
    host.state = "closing";
    this.received = { closeCode: code, reason };
    // The protocol echoed the code (with no reason) unless ours went first.
    this.sent ??= { closeCode: code, reason: "" };
    if (host.protocol.role === "server") {
      // RFC 6455 §7.1.1: "the server MUST close the underlying TCP
      // connection immediately" after the close handshake; the echo is
      // flushed first by closing the writer.
      this.finish(this.#closedBy(true), true);
    } else {
      // The client waits for the server to close the TCP connection (§7.1.1),
      // up to the close deadline.
      this.#armCloseTimer();
      host.drainUntilClosed();
    }
  }

  /** The stream ended: clean after a close handshake, abnormal (1006) else. */
  ended(): void {
    const clean = this.host.protocol.receiveEof();
    if (clean) {
      // Graceful: the echo of the peer's close frame (and any pong before
      // it) may still be queued, and a peer that half-closed still reads.
      this.finish(this.#closedBy(true), true);
    } else {
      this.finish(this.#abnormal(""), false);
    }
  }

  /**
   * The peer broke the protocol. Reading stops, but the close frame waits
   * until the application has taken the messages that came before the bad
   * frame and had a turn to answer them (Autobahn grades the echo of a valid
   * message before the 1002 as strict: cases 3.2, 4.1.3, 5.15); an
   * application that does not read gets the close at `closeTimeout`.
   */
  protocolFailed(error: ProtocolError): void {
    this.failing = error;
    this.#failTimer = setTimeout(
      () => this.#failNow(true),
      this.host.settings.closeTimeout,
    );
    this.failWhenDrained();
  }

  /** Fails once the inbox is empty, after the application's turn. */
  failWhenDrained(): void {
    const { host } = this;
    if (this.#failScheduled || (host.queued > 0 && !host.readableDone)) {
      return;
    }
    this.#failScheduled = true;
    // A macrotask: the application's answer to the last message is sent
    // from microtasks after its read resolves, so it is queued by then.
    this.#failSoonTimer = setTimeout(() => this.#failNow(false), 0);
  }

  /** Sends the failing close frame (after queued sends, unless `now`) and ends. */
  #failNow(now: boolean): void {
    const error = this.failing;
    if (error === null || this.info !== null) return;
    const fail = () => {
      if (this.info !== null) return;
      const { protocol } = this.host;
      if (!protocol.closeSent) {
        this.sent = { closeCode: error.closeCode, reason: "" };
      }
      protocol.fail();
      this.finish(
        {
          closeCode: error.closeCode,
          reason: error.message,
          wasClean: false,
          sent: this.sent,
          received: this.received,
        },
        true,
        error,
      );
    };
    if (now) fail();
    else this.host.afterSends(fail);
  }

  /** The socket failed (its cause is not reported: the close info says 1006). */
  transportFailed(): void {
    if (this.info !== null) return;
    this.finish(this.#abnormal(""), false);
  }

  /**
   * A received message did not transform (an agreed extension's failure):
   * it fails the connection as `receive` would, a protocol error with its
   * close code, anything else as the socket's failure.
   */
  extensionFailed(error: unknown): void {
    if (this.info !== null) return;
    if (error instanceof ProtocolError) {
      this.host.protocol.failWith(error);
      if (this.failing !== null) return;
      this.protocolFailed(error);
    } else this.transportFailed();
  }

  /** The keepalive's pong did not come in time. */
  keepaliveTimedOut(): void {
    this.finish(this.#abnormal("Keepalive ping timed out"), false);
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined || this.info !== null) return;
    this.#closeTimer = setTimeout(() => {
      this.#closeTimer = undefined;
      this.finish(this.#abnormal("Close handshake timed out"), false);
    }, this.host.settings.closeTimeout);
  }

  /** The close as both frames make it, the peer's first. */
  #closedBy(wasClean: boolean): CloseInfo {
    const received = this.received;
    return {
      closeCode: received === null ? 1005 : received.closeCode,
      reason: received === null ? "" : received.reason,
      wasClean,
      sent: this.sent,
      received,
    };
  }

  /**
   * An end before the TCP close: 1006, unless the peer's close frame came
   * (a client waiting for the server to close TCP), which made the close
   * handshake complete.
   */
  #abnormal(reason: string): CloseInfo {
    return this.received !== null ? this.#closedBy(true) : {
      closeCode: 1006,
      reason,
      wasClean: false,
      sent: this.sent,
      received: null,
    };
  }

  /**
   * Ends the connection once: ends the inbox, fails pending pings, stops
   * the timers and closes the socket (`graceful`: after flushing what was
   * written, and at the latest `closeTimeout` later).
   */
  finish(info: CloseInfo, graceful: boolean, error?: ProtocolError): void {
    if (this.info !== null) return;
    const { host } = this;
    this.info = info;
    host.state = "closed";
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#failTimer);
    clearTimeout(this.#failSoonTimer);
    host.deadline?.unlink(); // keepalive's
    // Iteration's one rule: it ends after a clean close, and throws a
    // ConnectionClosedError after an unclean one (its cause the
    // ProtocolError when the peer broke the protocol).
    let closedError: ConnectionClosedError | undefined;
    if (!host.readableDone) {
      if (info.wasClean) host.endInbox(null);
      else host.endInbox(closedError = this.closedError("receive", error));
    }
    // Made only when someone gets it: an error's stack trace is not free,
    // and most connections end with no ping waiting and a clean close.
    host.rejectPings(() => closedError ??= this.closedError("receive"));
    const channel = host.channel;
    if (!graceful) {
      host.discardCorked();
      this.#drop();
      return;
    }
    // A graceful end flushes what was written (the close frame), but a peer
    // that never reads must not hold the socket open past the deadline.
    host.uncork();
    host.deadline = ConnectionEnd.#dropsDue.add(
      host.settings.closeTimeout,
      this,
    );
    const flushed = channel.closeWrite().catch(() => {});
    if (error === undefined) flushed.finally(() => this.#drop());
    else {
      // Failing, we stopped reading at the bad frame. Closing the socket
      // with the peer's bytes unread would send a reset, and a reset has
      // the peer's kernel drop our close frame before the peer reads it.
      // So the connection ends here, but its socket reads on, discarding,
      // until the peer closes too (as RFC 6455 §7.1.1 has a client wait
      // for the server) or the close deadline comes.
      flushed.then(() => {
        this.#settle();
        this.#discardUntilEof();
      });
    }
  }

  // The deadlines of graceful ends, shared by every connection (one queue
  // per closeTimeout): a timer per connection was 2 % of a server's
  // handshake.
  static #dropsDue = new DeadlineQueues<ConnectionEnd>((end) => end.#drop());

  /** Settles `closed` and leaves the open set, once. */
  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.host.settled(this.info!);
  }

  /** Closes the socket and settles; at the latest, `closeTimeout` after `finish`. */
  #drop(): void {
    this.host.deadline?.unlink(); // the drop's own
    this.host.channel.close();
    this.#settle();
  }

  /**
   * Reads and drops what the peer still sends, then drops the socket;
   * dropping it at the deadline ends a pending read, and so this.
   */
  #discardUntilEof(): void {
    const channel = this.host.channel;
    const done = () => this.#drop();
    const next = (): void => {
      channel.read().then((bytes) => bytes === null ? done() : next(), done);
    };
    next();
  }

  /**
   * The error for an operation the connection can no longer do, naming the
   * close that stops it (while our close is under way, its code, not 1006).
   */
  closedError(what: string, cause?: unknown): ConnectionClosedError {
    return closedError(this.host.state, this, what, cause);
  }
}

/**
 * The close frame `close(options)` asks for: code 1000 and the code's
 * standard reason unless given.
 *
 * @throws {TypeError} for `code` given instead of `closeCode`.
 * @throws {RangeError} for a code that may not be sent or a reason over 123
 * bytes.
 */
export function closeFrameOf(options: CloseOptions): CloseFrame {
  if ((options as { code?: unknown }).code !== undefined) {
    throw new TypeError(
      "close() takes closeCode, not code: close({ closeCode, reason })",
    );
  }
  const code = options.closeCode ?? 1000;
  const reason = options.reason ?? DEFAULT_CLOSE_REASONS[code] ?? "";
  // Validate now, so a bad argument throws at the call.
  encodeClosePayload(code, reason);
  return { closeCode: code, reason };
}

/**
 * The error for `what` (send, ping, receive) on a connection that is not
 * open: its close, or the one under way, or 1006 when there is none yet (a
 * socket that failed before any close).
 */
export function closedError(
  state: ConnectionState,
  end: ConnectionEnd | null,
  what: string,
  cause?: unknown,
): ConnectionClosedError {
  const info: CloseFrame & { wasClean: boolean } = end?.info ??
    (end?.received &&
      { ...end.received, wasClean: false }) ??
    (end?.requested && { ...end.requested, wasClean: false }) ??
    { closeCode: 1006, reason: "", wasClean: false };
  return new ConnectionClosedError(
    `Cannot ${what} on a ${state} connection: close code ${info.closeCode}`,
    info,
    cause === undefined ? undefined : { cause },
  );
}
