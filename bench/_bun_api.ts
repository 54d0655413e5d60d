/**
 * The subset of Bun 1.4's API the benchmark programs use (see the
 * `bun-types` package), declared here so they type-check under `deno check`
 * without Bun's types. Reached through `globalThis`, so importing this on
 * Deno is harmless.
 *
 * @module
 */

/** A raw TCP socket of `Bun.connect` or `Bun.listen`. */
export interface BunSocket<T> {
  /** What the program attached to the socket. */
  data: T;
  /** Writes what the kernel takes now: the bytes written, -1 once closed. */
  write(bytes: Uint8Array): number;
  /** Flushes and sends a FIN. */
  end(): void;
  /** Closes at once (a reset). */
  terminate(): void;
  /** Stops reading. */
  pause(): void;
  /** Reads again. */
  resume(): void;
  setNoDelay(noDelay: boolean): boolean;
}

/** The callbacks of a raw socket. */
export interface BunSocketHandlers<T> {
  binaryType?: "uint8array";
  open?(socket: BunSocket<T>): void;
  data?(socket: BunSocket<T>, bytes: Uint8Array): void;
  drain?(socket: BunSocket<T>): void;
  end?(socket: BunSocket<T>): void;
  close?(socket: BunSocket<T>, error?: Error): void;
  error?(socket: BunSocket<T>, error: Error): void;
  connectError?(socket: BunSocket<T>, error: Error): void;
}

/** A socket of `Bun.serve`'s `websocket` handlers. */
export interface BunServerWebSocket {
  /** -1: queued behind backpressure; 0: dropped; else the bytes sent. */
  send(message: string | Uint8Array): number;
}

/** The options of `Bun.serve` with a `websocket` handler. */
export interface BunServeOptions {
  hostname: string;
  port: number;
  fetch(
    request: Request,
    server: { upgrade(request: Request): boolean },
  ): Response | undefined;
  websocket: {
    message(ws: BunServerWebSocket, message: string | Uint8Array): void;
    maxPayloadLength?: number;
    backpressureLimit?: number;
    closeOnBackpressureLimit?: boolean;
    idleTimeout?: number;
    sendPings?: boolean;
    perMessageDeflate?: boolean;
  };
}

/** The `Bun` global, as far as the benchmark uses it. */
export interface BunApi {
  connect<T>(options: {
    hostname: string;
    port: number;
    data?: T;
    socket: BunSocketHandlers<T>;
  }): Promise<BunSocket<T>>;
  listen<T>(options: {
    hostname: string;
    port: number;
    data?: T;
    socket: BunSocketHandlers<T>;
  }): { port: number; stop(closeActive?: boolean): void };
  serve(options: BunServeOptions): { port: number };
}

/** `Bun`, or a clear error when another runtime runs this. */
export function requireBun(): BunApi {
  const bun = (globalThis as { Bun?: BunApi }).Bun;
  if (bun === undefined) throw new Error("This program needs Bun: bun <file>");
  return bun;
}
