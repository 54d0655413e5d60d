/**
 * An in-memory network for the fuzzer's pipe target: `RuntimeTransports`
 * whose connections are byte queues, so `serve()` and `connect()` (through
 * their `transport` option) run their handshakes without sockets, thousands
 * of times a second.
 *
 * `tests/_pipe.ts` is the pipe the connection tests use under `takeover()`;
 * this one behaves like a socket where `serve()` and `connect()` need it to:
 * `close()` ends both directions even while the streams are locked (the peer
 * reads the end of the stream after what was already sent, and its writes
 * fail as on a reset socket), closing `writable` is a half-close, and each
 * direction holds a bounded number of bytes (backpressure).
 *
 * @module
 */
import type {
  Address,
  ConnectTransportOptions,
  Listener,
  ListenOptions,
  RuntimeTransports,
  Transport,
} from "../../src/transport.ts";

/** What a direction holds before writes wait: like a socket buffer. */
const CAPACITY = 64 * 1024;

/** One direction of a connection: a bounded byte queue. */
class Direction {
  #chunks: Uint8Array[] = [];
  #size = 0;
  /** The writer closed: the reader gets the end after what is queued. */
  #ended = false;
  /** The connection was dropped: writes fail. */
  #reset = false;
  /** The reader went away: writes are accepted and dropped. */
  #discarding = false;
  #wakeReader: (() => void) | null = null;
  #wakeWriters: (() => void)[] = [];

  async write(chunk: Uint8Array): Promise<void> {
    for (;;) {
      if (this.#reset) throw new Error("Connection reset by peer");
      if (this.#discarding) return;
      if (this.#size < CAPACITY) break;
      await new Promise<void>((wake) => this.#wakeWriters.push(wake));
    }
    this.#chunks.push(chunk.slice());
    this.#size += chunk.length;
    this.#wake();
  }

  /** The next chunk; `null` at the end. */
  async read(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.#chunks.shift();
      if (chunk !== undefined) {
        this.#size -= chunk.length;
        this.#wake();
        return chunk;
      }
      if (this.#ended || this.#discarding) return null;
      if (this.#reset) throw new Error("Connection reset by peer");
      await new Promise<void>((wake) => (this.#wakeReader = wake));
    }
  }

  end(): void {
    this.#ended = true;
    this.#wake();
  }

  reset(): void {
    this.#reset = true;
    this.#wake();
  }

  stopReading(): void {
    this.#discarding = true;
    this.#chunks = [];
    this.#size = 0;
    this.#wake();
  }

  #wake(): void {
    const reader = this.#wakeReader;
    this.#wakeReader = null;
    reader?.();
    for (const writer of this.#wakeWriters.splice(0)) writer();
  }
}

/**
 * One end of a connection: reads `inbound`, writes `outbound`. It is held
 * (`onRelease` not yet called) until it is closed, or both its reading and
 * its writing are over, as a socket's file descriptor is.
 */
function end(
  inbound: Direction,
  outbound: Direction,
  localAddr: Address,
  remoteAddr: Address,
  onRelease: () => void,
): Transport {
  let closed = false;
  let readDone = false;
  let writeDone = false;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    onRelease();
  };
  const finish = () => readDone && writeDone && release();
  const close = () => {
    if (closed) return;
    closed = true;
    // As a socket: what was sent arrives, then the end; the peer's writes
    // to us fail from now on.
    outbound.end();
    inbound.stopReading();
    inbound.reset();
    release();
  };
  const readable = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let chunk: Uint8Array | null;
      try {
        chunk = await inbound.read();
      } catch (error) {
        if (!closed) throw error;
        chunk = null;
      }
      if (chunk !== null) return controller.enqueue(chunk);
      controller.close();
      readDone = true;
      finish();
    },
    cancel() {
      inbound.stopReading();
      readDone = true;
      finish();
    },
  }, { highWaterMark: 0 });
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (closed) throw new Error("Cannot write to a closed transport");
      await outbound.write(chunk);
    },
    close() {
      outbound.end();
      writeDone = true;
      finish();
    },
    abort() {
      close();
    },
  });
  return { readable, writable, close, localAddr, remoteAddr };
}

/**
 * A connected pair of transports: `[a, b]`, what one writes the other reads.
 * `onRelease` is called once for each end that is let go of, with the end.
 */
export function memoryPair(
  a: Address = { hostname: "127.0.0.1", port: 1 },
  b: Address = { hostname: "127.0.0.1", port: 2 },
  onRelease: (end: Transport) => void = () => {},
): [Transport, Transport] {
  const aToB = new Direction();
  const bToA = new Direction();
  const ends: Transport[] = [];
  ends.push(end(bToA, aToB, a, b, () => onRelease(ends[0]!)));
  ends.push(end(aToB, bToA, b, a, () => onRelease(ends[1]!)));
  return [ends[0]!, ends[1]!];
}

/**
 * Listening and connecting in memory: `listen()` takes a port (0 picks
 * one), `connect()` to that port hands the listener the other end.
 */
export class MemoryNetwork implements RuntimeTransports {
  readonly name = "memory";
  readonly #listeners = new Map<number, (transport: Transport) => void>();
  #nextPort = 50_000;
  #nextClientPort = 30_000;
  readonly #held = new Set<Transport>();

  /**
   * How many transports are held: neither closed nor ended both ways. Every
   * one a finished connection leaves held is a leak (a socket left open).
   */
  get held(): number {
    return this.#held.size;
  }

  /** Stops counting the transports held now (once they were reported). */
  forgetHeld(): void {
    this.#held.clear();
  }

  // deno-lint-ignore require-await
  async connect(options: ConnectTransportOptions): Promise<Transport> {
    options.signal?.throwIfAborted();
    const accept = this.#listeners.get(options.port);
    if (accept === undefined) {
      throw new Error(
        `Connection refused: nothing listens on port ${options.port}`,
      );
    }
    const local = { hostname: "127.0.0.1", port: this.#nextClientPort++ };
    const remote = { hostname: options.hostname, port: options.port };
    const [client, server] = memoryPair(
      local,
      remote,
      (end) => this.#held.delete(end),
    );
    this.#held.add(client).add(server);
    accept(server);
    return client;
  }

  // deno-lint-ignore require-await
  async listen(
    options: ListenOptions,
    onTransport: (transport: Transport) => void,
  ): Promise<Listener> {
    const port = options.port === 0 ? this.#nextPort++ : options.port;
    this.#listeners.set(port, onTransport);
    return {
      addr: { hostname: options.hostname, port },
      close: () => {
        this.#listeners.delete(port);
      },
    };
  }
}
