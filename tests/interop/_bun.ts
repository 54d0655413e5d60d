/**
 * The subset of Bun 1.4's API the interop suite uses (see the `bun-types`
 * package), declared here so the suite type-checks under `deno check`
 * without Bun's types. Reached through `globalThis`, so importing this on
 * Deno is harmless.
 */

/** A socket of `Bun.serve`'s `websocket` handlers. */
export interface BunServerWebSocket<T> {
  /** What `server.upgrade(request, { data })` attached. */
  readonly data: T;
  send(message: string | ArrayBufferView | ArrayBuffer): number;
  close(code?: number, reason?: string): void;
}

/** What `Bun.serve` returns. */
export interface BunServer<T> {
  readonly port: number;
  upgrade(
    request: Request,
    options?: { headers?: HeadersInit; data?: T },
  ): boolean;
  /** `true` closes the active connections too. */
  stop(closeActiveConnections?: boolean): Promise<void>;
}

/** The options of `Bun.serve` with a `websocket` handler. */
export interface BunServeOptions<T> {
  hostname: string;
  port: number;
  fetch(
    request: Request,
    server: BunServer<T>,
  ): Response | undefined | Promise<Response | undefined>;
  websocket: {
    open?(ws: BunServerWebSocket<T>): void;
    message(ws: BunServerWebSocket<T>, message: string | Uint8Array): void;
    close?(ws: BunServerWebSocket<T>, code: number, reason: string): void;
  };
}

/** What `Bun.spawn` returns (with `stdout`/`stderr: "pipe"`). */
export interface BunSubprocess {
  readonly pid: number;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves with the exit code once the process exited. */
  readonly exited: Promise<number>;
  /** `null` until exited, or when a signal ended the process. */
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  kill(signal?: string | number): void;
}

/** The `Bun` global, as far as this suite uses it. */
export interface BunApi {
  serve<T>(options: BunServeOptions<T>): BunServer<T>;
  spawn(
    command: string[],
    options: {
      cwd?: string;
      env?: Record<string, string | undefined>;
      stdin?: "ignore";
      stdout: "pipe";
      stderr: "pipe";
    },
  ): BunSubprocess;
}

/** `Bun` when Bun runs this, else `undefined`. */
export function bunApi(): BunApi | undefined {
  return (globalThis as { Bun?: BunApi }).Bun;
}

/** `Bun`, or a clear error when called on another runtime. */
export function requireBun(): BunApi {
  const bun = bunApi();
  if (bun === undefined) throw new Error("This needs Bun");
  return bun;
}
