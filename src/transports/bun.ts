/**
 * The Bun transport: TCP and TLS over `Bun.connect` and `Bun.listen`, whose
 * callback sockets are adapted to Web Streams with backpressure both ways.
 * `Bun` is reached only inside functions, so importing this module on another
 * runtime is harmless, and it type-checks without Bun's types.
 *
 * @module
 */
import type { ChannelReader } from "../byte_channel.ts";
import { closedError } from "../_drain_waiters.ts";
import { SocketChannel } from "../_socket_channel.ts";
import { PayloadBuffers } from "../payload_buffers.ts";
import type * as t from "../transport.ts";

// An entry point of its own: the types its export refers to come with it.
export type * from "../transport.ts";

// The subset of Bun 1.4's socket API used here (see the `bun-types` package).
interface BunSocket {
  data: BunChannel | undefined;
  write(bytes: Uint8Array): number; // bytes taken; -1 once closed
  end(): void;
  shutdown(): void;
  pause(): void;
  resume(): void;
  // `undefined` once the socket is closed.
  readonly localAddress: string | undefined;
  readonly localPort: number | undefined;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
}
type Handler<A extends unknown[] = []> = (socket: BunSocket, ...a: A) => void;
interface BunOptions {
  hostname: string;
  port: number;
  tls?: { ca?: string[]; serverName?: string; cert?: string; key?: string };
  allowHalfOpen: true; // a FIN from the peer ends reading, not writing
  socket: typeof handlers & { handshake?: Handler<[boolean, Error | null]> };
}
interface BunApi {
  connect(options: BunOptions): Promise<BunSocket>;
  listen(options: BunOptions): { hostname: string; port: number; stop(): void };
}

/** Received bytes queued unread before the socket is paused. */
const READ_AHEAD = 64 * 1024;

// BunChannel's flags: the socket paused by us, a FIN wanted once all is
// written, reading over.
const PAUSED = 1;
const SHUTDOWN_WANTED = 2;
const READ_ENDED = 4;

/** The part of a channel's state that few sockets ever need. */
class RareSocketState {
  // Read when first asked for, then kept. Each read is a system call (Bun
  // 1.4.5 caches none of them), and reading all four on every connection,
  // with a setNoDelay Bun makes itself, took about 9 µs of the 70 a server's
  // handshake costs (bench/README.md). Bun's socket forgets them once
  // closed: first asked for after that, they are null, as Node's
  // `socket.remoteAddress` is then `undefined`.
  localAddr: t.Address | null = null;
  remoteAddr: t.Address | null = null;
  /** An error Bun reported before `close` (a failed TLS session). */
  error: Error | undefined = undefined;
  /** Why reading ended, when an error ended it. */
  readError: Error | null = null;
}

/**
 * One socket's channel; the socket's callbacks (`handlers`) call its `on…`
 * methods. Bun gives every `data` event a fresh buffer (checked on Bun
 * 1.4.5), so chunks are queued uncopied. A full queue pauses the socket
 * until read() takes from it: the kernel buffers fill up, and TCP flow
 * control stops the peer.
 */
class BunChannel extends SocketChannel {
  readonly #socket: BunSocket;
  /** Received chunks not yet read, and the read waiting for one. */
  #received: Uint8Array[] | null = null;
  #receivedBytes = 0;
  #reader: ChannelReader | null = null;
  /** What the socket did not take at once, in order. */
  #unsent: Uint8Array[] | null = null;
  /** PAUSED, SHUTDOWN_WANTED and READ_ENDED. */
  #flags = 0;
  /**
   * What few sockets need, made when first needed: with it out of line a
   * channel has 12 fields (with SocketChannel's), which puts it in
   * JavaScriptCore's 112-byte size class rather than 160.
   */
  #rare: RareSocketState | null = null;

  get #own(): RareSocketState {
    return this.#rare ??= new RareSocketState();
  }

  constructor(socket: BunSocket) {
    super();
    this.#socket = socket;
    // No setNoDelay: Bun sets TCP_NODELAY itself on every socket it
    // accepts or connects (seen with strace on Bun 1.4.5).
  }

  get localAddr(): t.Address | null {
    const socket = this.#socket;
    const rare = this.#own;
    return copyOf(
      rare.localAddr ??= addressOf(socket.localAddress, socket.localPort),
    );
  }

  get remoteAddr(): t.Address | null {
    const socket = this.#socket;
    const rare = this.#own;
    return copyOf(
      rare.remoteAddr ??= addressOf(socket.remoteAddress, socket.remotePort),
    );
  }

  override readTo(reader: ChannelReader): void {
    const received = this.#received;
    if (received !== null) {
      const bytes = received.shift()!;
      if (received.length === 0) this.#received = null;
      this.#receivedBytes -= bytes.length;
      if (
        (this.#flags & PAUSED) !== 0 && this.#receivedBytes < READ_AHEAD &&
        !this.closed
      ) {
        this.#flags &= ~PAUSED;
        this.#socket.resume();
      }
      queueMicrotask(() => reader.received(bytes));
      return;
    }
    if ((this.#flags & READ_ENDED) === 0) this.#reader = reader;
    else {
      const error = this.#rare?.readError ?? null;
      if (error !== null) queueMicrotask(() => reader.failed(error));
      else queueMicrotask(() => reader.received(null));
    }
  }

  write(bytes: Uint8Array): void {
    this.checkWritable();
    if (bytes.length === 0) return;
    this.bufferedAmount += bytes.length;
    if (this.#unsent === null) {
      this.#unsent = [bytes];
      this.onDrain();
    } else this.#unsent.push(bytes);
  }

  closeWrite(): Promise<void> {
    this.#flags |= SHUTDOWN_WANTED;
    this.settle();
    return this.drained();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // end(), not terminate(): like close(2) on Deno, the kernel still sends
    // what it holds, then a FIN. terminate() resets (SO_LINGER 0), and the
    // peer may then drop bytes it was sent, such as a close frame.
    this.#socket.end();
    this.#received = null;
    this.#receivedBytes = 0;
    this.#endRead(null);
    this.settle();
  }

  protected override settle(): void {
    super.settle();
    if (
      (this.#flags & SHUTDOWN_WANTED) !== 0 && this.bufferedAmount === 0 &&
      !this.closed
    ) {
      this.#flags &= ~SHUTDOWN_WANTED;
      this.#socket.shutdown(); // a FIN; reading goes on
    }
  }

  #endRead(error: Error | null): void {
    if ((this.#flags & READ_ENDED) !== 0) return;
    this.#flags |= READ_ENDED;
    if (error !== null) this.#own.readError = error;
    const reader = this.#reader;
    this.#reader = null;
    if (reader === null) return;
    if (error !== null) reader.failed(error);
    else reader.received(null);
  }

  onData(bytes: Uint8Array): void {
    if (this.closed || (this.#flags & READ_ENDED) !== 0) return;
    if (bytes.length >= FRESH_READ_MIN && isWholeBuffer(bytes)) {
      freshReads.add(bytes.buffer);
    }
    const reader = this.#reader;
    if (reader !== null) {
      this.#reader = null;
      reader.received(bytes);
      return;
    }
    (this.#received ??= []).push(bytes);
    this.#receivedBytes += bytes.length;
    if (this.#receivedBytes >= READ_AHEAD && (this.#flags & PAUSED) === 0) {
      this.#flags |= PAUSED;
      this.#socket.pause();
    }
  }

  /** Writes what the socket takes; the rest waits for the next `drain`. */
  onDrain(): void {
    const unsent = this.#unsent;
    if (unsent === null) return this.settle();
    while (unsent.length > 0 && !this.closed) {
      const bytes = unsent[0]!;
      const taken = this.#socket.write(bytes);
      if (taken < 0) return this.fail(this.#rare?.error ?? closedError());
      this.bufferedAmount -= taken;
      if (taken < bytes.length) {
        unsent[0] = bytes.subarray(taken);
        return;
      }
      unsent.shift();
    }
    if (unsent.length === 0) this.#unsent = null;
    this.settle();
  }

  onEnd(): void {
    this.#endRead(null);
  }

  onError(error: Error): void {
    this.#own.error = error; // `close` follows
  }

  onClose(error: Error | undefined = this.#rare?.error): void {
    if (error !== undefined) this.#own.error = error;
    const unsent = this.bufferedAmount > 0 && !this.closed;
    this.closed = true;
    this.#endRead(error ?? null);
    // Bytes that will never go out are a failed write, as on Deno.
    if (unsent) this.fail(error ?? closedError());
    this.settle(); // rejects a pending drain
  }
}

const handlers = {
  binaryType: "uint8array" as const,
  open: ((socket) => void (socket.data ??= new BunChannel(socket))) as Handler,
  data: ((socket, bytes) => socket.data?.onData(bytes)) as Handler<
    [Uint8Array]
  >,
  drain: ((socket) => socket.data?.onDrain()) as Handler,
  end: ((socket) => socket.data?.onEnd()) as Handler,
  close: ((socket, error) => socket.data?.onClose(error)) as Handler<[Error?]>,
  error: ((socket, error) => socket.data?.onError(error)) as Handler<[Error]>,
};

/** An address from a Bun socket's fields; `null` once it has forgotten them. */
function addressOf(
  hostname: string | undefined,
  port: number | undefined,
): t.Address | null {
  return hostname && port ? { hostname, port } : null;
}

/** A copy for the caller, so that the one kept cannot be changed. */
function copyOf(address: t.Address | null): t.Address | null {
  return address && { hostname: address.hostname, port: address.port };
}

const bun = () => (globalThis as unknown as { Bun: BunApi }).Bun;

async function connect(options: t.ConnectTransportOptions) {
  const { hostname, port, tls, signal } = options;
  signal?.throwIfAborted();
  let tlsOptions: BunOptions["tls"];
  if (tls) {
    // Never an empty object: Bun 1.4 takes `tls: {}` as no TLS at all and
    // would speak plain TCP to a wss: server.
    tlsOptions = { serverName: tls.serverName ?? hostname };
    // Bun's `ca` replaces its default roots, while `caCerts` adds to them.
    const { rootCertificates } = await import("node:tls");
    if (tls.caCerts) tlsOptions.ca = [...rootCertificates, ...tls.caCerts];
  }
  const ready = Promise.withResolvers<BunSocket>();
  const onAbort = () => ready.reject(signal?.reason);
  if (signal?.aborted) onAbort(); // during the import
  signal?.addEventListener("abort", onAbort, { once: true });
  const opening = bun().connect({
    hostname,
    port,
    allowHalfOpen: true,
    ...(tlsOptions && { tls: tlsOptions }),
    socket: {
      ...handlers,
      open: (socket) => {
        handlers.open(socket);
        if (!tls) ready.resolve(socket);
      },
      // Bun.connect resolves before the TLS handshake ends: wait for it, so
      // that a bad certificate rejects here.
      handshake: (socket, ok, error) =>
        ok && !error
          ? ready.resolve(socket)
          : ready.reject(error ?? new Error("TLS handshake failed")),
      close: (socket, error) => {
        handlers.close(socket, error);
        ready.reject(error ?? new Error("Connection closed while opening"));
      },
    },
  });
  opening.catch(ready.reject);
  try {
    const socket = await ready.promise;
    return socket.data ??= new BunChannel(socket);
  } catch (error) {
    opening.then((socket) => socket.end()).catch(() => {});
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

// deno-lint-ignore require-await
async function listen(
  options: t.ListenOptions,
  onTransport: (transport: t.Transport) => void,
): Promise<t.Listener> {
  const { hostname, port, tls } = options;
  const server = bun().listen({
    hostname,
    port,
    allowHalfOpen: true,
    ...(tls && { tls: { cert: tls.cert, key: tls.key } }),
    socket: {
      ...handlers,
      // With a `handshake` handler a TLS socket opens on accept, not once its
      // handshake is done, so the server's deadlines also bound a client
      // that stalls mid-handshake; one that fails it is closed by Bun.
      handshake: () => {},
      open: (socket) => {
        const transport = socket.data ??= new BunChannel(socket);
        try {
          onTransport(transport);
        } catch (error) {
          transport.close(); // nobody else holds it
          console.error("wsstream: onTransport threw", error);
        }
      },
    },
  });
  let closed = false;
  return {
    addr: { hostname: server.hostname, port: server.port },
    close() {
      if (!closed) server.stop(); // accepted sockets stay open
      closed = true;
    },
  };
}

/**
 * TCP and TLS transports for Bun. Closing `writable` sends a FIN and keeps
 * reading (half-close); once both directions are over the socket is closed.
 * Cancelling `readable` stops reading but keeps `writable` usable. A TLS
 * `connect` resolves once the handshake is done.
 *
 * @example Open a TCP transport
 * ```ts
 * import { bunTransports } from "@wsstream/wsstream/bun";
 * const open = () => bunTransports.connect({ hostname: "::1", port: 9001 });
 * ```
 */
export const bunTransports: t.RuntimeTransports = {
  name: "bun",
  connect,
  listen,
  get payloadBuffers(): PayloadBuffers {
    return alignedBuffers ??= new PayloadBuffers({
      aligned: true,
      // Unzeroed: the caller writes every byte (see payload_buffers.ts).
      allocate: (size) =>
        size < PLAIN_FROM ? allocUnsafeSlow(size) : new Uint8Array(size),
      release: releaseFreshRead,
      // Each small message in a typed array of its own: JavaScriptCore
      // makes those in its heap, cheaper than views into a shared buffer
      // (32-byte echo with received messages shared: 1.34-1.40M
      // messages/s, against 1.62-1.69M).
      shareSmallBuffers: false,
    });
  },
};

/**
 * Bun's payload buffers: its `set()` is slow for large copies that are not
 * aligned alike (see payload_buffers.ts), so copies are placed for it. Made
 * on first use, so that importing this module elsewhere touches no `Buffer`.
 */
let alignedBuffers: PayloadBuffers | null = null;

/**
 * From this size up, payload buffers are plain zeroed `Uint8Array`s, not
 * `Buffer.allocUnsafeSlow`: for a 16 MiB message they faulted fewer pages
 * (about 1,300 against 1,900 a message, echoing 16 MiB with the reads
 * released as below), and zeroing is no cost next to that.
 */
const PLAIN_FROM = 1024 * 1024;

function allocUnsafeSlow(size: number): Uint8Array {
  return (globalThis as unknown as {
    Buffer: { allocUnsafeSlow(size: number): Uint8Array };
  }).Buffer.allocUnsafeSlow(size);
}

/**
 * Large messages on Bun. Every `data` event brings a fresh buffer, up to 512
 * KiB, and every page of a fresh buffer is a page fault the first time it is
 * written (about 10 µs each on our 2-core EPYC VM). A 16 MiB echo that kept
 * its 32 reads until the garbage collector let them go faulted 2,000 to
 * 4,000 pages per message; Bun native faults 100 to 700. So each read a
 * large message was joined from is let go as soon as its bytes are copied
 * (`ArrayBuffer.prototype.transfer(0)` frees the memory there and then), and
 * the next reads reuse it: 16 MiB echoed went from about 0.3x to about 0.6x
 * Bun native, faults per message to 800 to 2,000 (bench/README.md).
 *
 * Only this transport's reads, whole and at least this large, are recorded
 * in {@link freshReads}, and only those are released, by
 * {@link PayloadBuffers.join} after copying them: a whole read that is all
 * payload of a message in several parts is seen by no one but the protocol.
 * A buffer a user gave (`takeover` of their own stream) is never in the set.
 */
const FRESH_READ_MIN = 64 * 1024;

/** The `buffer` of each large read not yet released (see above). */
const freshReads = new WeakSet<ArrayBufferLike>();

function isWholeBuffer(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.length === bytes.buffer.byteLength;
}

/** Frees a part's memory if the part is a whole read of ours (see above). */
function releaseFreshRead(part: Uint8Array): void {
  const buffer = part.buffer;
  if (isWholeBuffer(part) && freshReads.delete(buffer)) {
    (buffer as ArrayBuffer & { transfer(length: number): ArrayBuffer })
      .transfer(0);
  }
}
