/**
 * `Logger`: leveled logging (`debug`, `info`, `warn`, `error`) to a
 * pluggable sink, per server and per connection, as tcllib's `loglevel`.
 *
 * @module
 */

/**
 * How much a {@link Logger} tells: each level lets through itself and the
 * ones after it, `silent` nothing.
 *
 * @example
 * ```ts
 * import type { LogLevel } from "@wsstream/wsstream";
 * const level: LogLevel = "debug";
 * ```
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/**
 * One thing logged, as a sink receives it.
 *
 * @example
 * ```ts
 * import type { LogRecord } from "@wsstream/wsstream";
 * const format = (record: LogRecord) =>
 *   `${new Date(record.time).toISOString()} ${record.level} ${record.message}`;
 * ```
 */
export interface LogRecord {
  /** When, as `Date.now()`. */
  time: number;
  /** Its level. */
  level: Exclude<LogLevel, "silent">;
  /** What happened, in a few words. */
  message: string;
  /** Details: the logger's own fields (a connection's peer, say), then the call's. */
  fields: Record<string, unknown>;
}

/**
 * Where a {@link Logger}'s records go.
 *
 * @example
 * ```ts
 * import type { LogRecord, LogSink } from "@wsstream/wsstream";
 * const records: LogRecord[] = [];
 * const sink: LogSink = (record) => records.push(record);
 * ```
 */
export type LogSink = (record: LogRecord) => void;

const RANK: Record<LogLevel, number> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  silent: 100,
};

/**
 * The default sink: `console.debug`, `console.info`, `console.warn` or
 * `console.error` with the message and, when there are any, the fields.
 *
 * @param record The record.
 *
 * @example
 * ```ts
 * import { consoleSink, Logger } from "@wsstream/wsstream";
 * const logger = new Logger({ level: "info", sink: consoleSink });
 * ```
 */
export function consoleSink(record: LogRecord): void {
  const args: unknown[] = [`[wsstream] ${record.message}`];
  if (Object.keys(record.fields).length > 0) args.push(record.fields);
  console[record.level](...args);
}

/**
 * Options of a {@link Logger}.
 *
 * @example
 * ```ts
 * import type { LoggerOptions } from "@wsstream/wsstream";
 * const options: LoggerOptions = { level: "debug", fields: { server: "chat" } };
 * ```
 */
export interface LoggerOptions {
  /** The least level told (default `error`: silent except errors). */
  level?: LogLevel | undefined;
  /** Where records go (default {@link consoleSink}). */
  sink?: LogSink | undefined;
  /** Fields every record of this logger carries. */
  fields?: Record<string, unknown> | undefined;
}

/**
 * A leveled logger. By default it tells errors only, to the console. A
 * server given one (`serve`'s `logger`) logs its life cycle and each
 * connection's (opened, closed, handshakes refused) at `debug`, and the
 * errors of handlers and hooks at `error`; nothing a peer does in the
 * ordinary course of things (refused, gone, broke the protocol) is logged
 * above `debug`. Each connection gets a child logger with its peer and
 * path as fields (`connectionLogger`), whose level can be set on its own.
 *
 * @example Records to a sink of your own, debug for one connection only
 * ```ts
 * import { Logger, type LogRecord } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const records: LogRecord[] = [];
 * const server = new Logger({ level: "warn", sink: (r) => records.push(r) });
 * const one = server.child({ peer: "127.0.0.1:5000" });
 * one.level = "debug";
 * server.info("not told");
 * one.debug("frame", { bytes: 12 });
 * server.error("handler failed");
 * assert.deepEqual(records.map((r) => [r.level, r.message, r.fields]), [
 *   ["debug", "frame", { peer: "127.0.0.1:5000", bytes: 12 }],
 *   ["error", "handler failed", {}],
 * ]);
 * ```
 */
export class Logger {
  #level: LogLevel | null;
  #parent: Logger | null;
  readonly #sink: LogSink;
  readonly #fields: Record<string, unknown>;

  /**
   * Makes a logger.
   *
   * @param options Level, sink and fields.
   * @throws {TypeError} If the level is not one of the five, or the sink not a function.
   */
  constructor(options: LoggerOptions = {}) {
    const sink = options.sink ?? consoleSink;
    if (typeof sink !== "function") {
      throw new TypeError("A logger's sink must be a function");
    }
    this.#level = checkLevel(options.level ?? "error");
    this.#parent = null;
    this.#sink = sink;
    this.#fields = { ...options.fields };
  }

  /**
   * The least level told. A child follows its parent's until set.
   *
   * @returns The level.
   */
  get level(): LogLevel {
    return this.#level ?? this.#parent!.level;
  }

  /** Sets the least level told (for a child: its own, from now on). */
  set level(level: LogLevel) {
    this.#level = checkLevel(level);
  }

  /**
   * Whether records of `level` are told: check it before building costly
   * fields.
   *
   * @param level A level.
   * @returns `true` when they are.
   */
  enabled(level: Exclude<LogLevel, "silent">): boolean {
    return RANK[level] >= RANK[this.level];
  }

  /**
   * A logger to the same sink, following this one's level until its own is
   * set, whose records carry `fields` after this one's.
   *
   * @param fields The child's fields.
   * @returns The child.
   */
  child(fields: Record<string, unknown>): Logger {
    const child = new Logger({
      sink: this.#sink,
      fields: { ...this.#fields, ...fields },
    });
    child.#level = null;
    child.#parent = this;
    return child;
  }

  /**
   * Logs at `debug`.
   *
   * @param message What happened.
   * @param fields Details.
   */
  debug(message: string, fields?: Record<string, unknown>): void {
    this.#log("debug", message, fields);
  }

  /**
   * Logs at `info`.
   *
   * @param message What happened.
   * @param fields Details.
   */
  info(message: string, fields?: Record<string, unknown>): void {
    this.#log("info", message, fields);
  }

  /**
   * Logs at `warn`.
   *
   * @param message What happened.
   * @param fields Details.
   */
  warn(message: string, fields?: Record<string, unknown>): void {
    this.#log("warn", message, fields);
  }

  /**
   * Logs at `error`.
   *
   * @param message What happened.
   * @param fields Details.
   */
  error(message: string, fields?: Record<string, unknown>): void {
    this.#log("error", message, fields);
  }

  #log(
    level: Exclude<LogLevel, "silent">,
    message: string,
    fields: Record<string, unknown> | undefined,
  ): void {
    if (!this.enabled(level)) return;
    this.#sink({
      time: Date.now(),
      level,
      message,
      fields: fields === undefined ? { ...this.#fields } : {
        ...this.#fields,
        ...fields,
      },
    });
  }
}

function checkLevel(level: LogLevel): LogLevel {
  if (!Object.hasOwn(RANK, level)) {
    throw new TypeError(
      `Invalid log level ${
        JSON.stringify(level)
      }: use debug, info, warn, error or silent`,
    );
  }
  return level;
}

/** Each connection's server logger, then its own child once asked for. */
const loggers = new WeakMap<object, { server: Logger; own: Logger | null }>();
let fallback: Logger | null = null;

/**
 * Gives `connection` its server's logger; internal (the server calls it).
 *
 * @param connection The connection.
 * @param logger Its server's logger.
 */
export function attachLogger(connection: object, logger: Logger): void {
  loggers.set(connection, { server: logger, own: null });
}

/**
 * The logger of one connection: a child of its server's `logger` whose
 * records carry the peer (`host:port`) and path, and whose level can be set
 * for this connection alone. A connection of a server without a `logger`
 * (or not a server's) gets a default one: errors to the console.
 *
 * @param connection The connection.
 * @returns Its logger, the same one each time.
 *
 * @example Turn on debug for one connection
 * ```ts
 * import { connectionLogger, type WebSocketConnection } from "@wsstream/wsstream";
 *
 * function watch(connection: WebSocketConnection) {
 *   const log = connectionLogger(connection);
 *   log.level = "debug";
 *   log.debug("watching");
 * }
 * ```
 */
export function connectionLogger(
  connection: {
    readonly info: {
      remoteAddr: { hostname: string; port: number } | null;
      path: string;
    };
  },
): Logger {
  const entry = loggers.get(connection);
  if (entry === undefined) return fallback ??= new Logger();
  if (entry.own === null) {
    const { remoteAddr, path } = connection.info;
    entry.own = entry.server.child({
      peer: remoteAddr === null
        ? null
        : remoteAddr.hostname.includes(":")
        ? `[${remoteAddr.hostname}]:${remoteAddr.port}`
        : `${remoteAddr.hostname}:${remoteAddr.port}`,
      path,
    });
  }
  return entry.own;
}
