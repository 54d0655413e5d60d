/**
 * What a fuzz run keeps open for one target: our `serve()` server (whose
 * handler runs the fuzzer's application and hands each connection to the
 * case that made it), a raw listener standing in for a server to our
 * `connect()`, and the options every fuzzed connection runs with.
 *
 * - `pipe`: both on an in-memory network (`MemoryNetwork`).
 * - `socket`: both on TCP, 127.0.0.1, port 0.
 *
 * @module
 */
import {
  type ConnectOptions,
  serve,
  type ServerRequest,
  type WebSocketConnection,
  type WebSocketServer,
} from "../../mod.ts";
import { currentRuntime } from "../../src/runtime.ts";
import type {
  Listener,
  RuntimeTransports,
  Transport,
} from "../../src/transport.ts";
import { type AppResult, runApplication } from "./_frame_check.ts";
import { type AppMode, FUZZ_LIMITS } from "./_frame_cases.ts";
import { MemoryNetwork } from "./_memory_network.ts";

/** Where the fuzzer feeds our endpoints. */
export type Target = "pipe" | "socket";

/**
 * The handshake deadline of every fuzzed connection: short, since a case
 * that sends an unfinished head and waits meets it. (A case whose clock
 * shows it passed may also get a 408 or a `TimeoutError` for anything: a
 * loaded machine can make a valid handshake take that long.)
 */
export const HANDSHAKE_TIMEOUT = 300;
/**
 * The close deadline of every fuzzed connection. No case that goes right
 * waits for it (the peer always ends its side), so it only bounds a hang,
 * and is long enough that a loaded machine does not reach it.
 */
export const CLOSE_TIMEOUT = 2_000;

/** The host everything listens on and connects to. */
export const HOST = "127.0.0.1";

/** A connection our server accepted, with the application running on it. */
export interface Accepted {
  connection: WebSocketConnection;
  request: ServerRequest;
  mode: AppMode;
  app: Promise<AppResult>;
}

/** A queue whose reader waits, bounded in time. */
export class Queue<T> {
  #items: T[] = [];
  #wake: (() => void) | null = null;

  push(item: T): void {
    this.#items.push(item);
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** The next item, or `null` if none comes within `ms`. */
  async next(ms: number): Promise<T | null> {
    if (this.#items.length === 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, ms);
      });
      clearTimeout(timer);
      this.#wake = null;
    }
    return this.#items.shift() ?? null;
  }

  /** Takes everything queued. */
  drain(): T[] {
    return this.#items.splice(0);
  }
}

/** The application mode a request asks for (`?app=echo`), from its query. */
function modeOf(request: ServerRequest): AppMode {
  const mode = new URLSearchParams(request.query).get("app");
  return mode === "echo" || mode === "slow" ? mode : "collect";
}

/** Our server and a raw listener for one target. */
export class Harness {
  readonly target: Target;
  readonly network: RuntimeTransports;
  readonly server: WebSocketServer;
  /** Connections our server accepted, in order. */
  readonly accepted: Queue<Accepted>;
  /** Connections our client opened to the raw listener, in order. */
  readonly incoming: Queue<Transport>;
  /** What our server reported to `onError`: a server bug, every time. */
  readonly serverErrors: unknown[];
  /** Every connection ever opened, until it closed. */
  readonly open = new Set<Promise<unknown>>();
  readonly #listener: Listener;

  private constructor(
    target: Target,
    network: RuntimeTransports,
    server: WebSocketServer,
    accepted: Queue<Accepted>,
    listener: Listener,
    incoming: Queue<Transport>,
    serverErrors: unknown[],
  ) {
    this.target = target;
    this.network = network;
    this.server = server;
    this.accepted = accepted;
    this.#listener = listener;
    this.incoming = incoming;
    this.serverErrors = serverErrors;
  }

  /** Starts our server and the raw listener. */
  static async open(target: Target): Promise<Harness> {
    const network = target === "pipe" ? new MemoryNetwork() : currentRuntime();
    const accepted = new Queue<Accepted>();
    const serverErrors: unknown[] = [];
    let harness: Harness | null = null;
    const server = await serve({
      hostname: HOST,
      port: 0,
      transport: network,
      keepalive: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT,
      closeTimeout: CLOSE_TIMEOUT,
      ...FUZZ_LIMITS,
      onError: (error) => serverErrors.push(error),
    }, async (connection, request) => {
      harness?.track(connection.closed);
      const mode = modeOf(request);
      const app = runApplication(connection, mode);
      accepted.push({ connection, request, mode, app });
      await app;
    });
    const incoming = new Queue<Transport>();
    const listener = await network.listen(
      { hostname: HOST, port: 0 },
      (transport) => incoming.push(transport),
    );
    harness = new Harness(
      target,
      network,
      server,
      accepted,
      listener,
      incoming,
      serverErrors,
    );
    return harness;
  }

  /** The port our server listens on. */
  get serverPort(): number {
    return this.server.addr.port;
  }

  /** The raw listener's authority, as our client's `Host` names it. */
  get rawAuthority(): string {
    return `${HOST}:${this.#listener.addr.port}`;
  }

  /** A URL on the raw listener for our client. */
  rawUrl(path: string): string {
    return `ws://${this.rawAuthority}${path}`;
  }

  /** The options of a fuzzed client connection. */
  clientOptions(highWaterMark: number): ConnectOptions {
    return {
      transport: this.network,
      keepalive: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT,
      closeTimeout: CLOSE_TIMEOUT,
      highWaterMark,
      // The oracle's premise: the client offers no extension (connect()
      // offers permessage-deflate by default). Its handshake rules are
      // tested in tests/permessage_deflate_test.ts.
      extensions: [],
      ...FUZZ_LIMITS,
    };
  }

  /**
   * Transports still held (neither closed nor ended both ways): known on
   * the in-memory network only; 0 on sockets, where the Deno suite's
   * resource sanitizer does the counting for the whole run.
   */
  get heldTransports(): number {
    return this.network instanceof MemoryNetwork ? this.network.held : 0;
  }

  /** Stops counting the transports held now (once they were reported). */
  forgetHeldTransports(): void {
    if (this.network instanceof MemoryNetwork) this.network.forgetHeld();
  }

  /** Keeps `closed` of a connection in view until it settles. */
  track(closed: Promise<unknown>): void {
    this.open.add(closed);
    closed.finally(() => this.open.delete(closed));
  }

  /**
   * Closes everything: the listener, whatever our client's raw peers left,
   * our server (which closes its connections), and waits for every
   * connection to end.
   */
  async close(): Promise<void> {
    this.#listener.close();
    for (const transport of this.incoming.drain()) transport.close();
    await this.server.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.open]),
      new Promise((resolve) => (timer = setTimeout(resolve, 5_000))),
    ]);
    clearTimeout(timer);
  }
}
