/**
 * The Bun transport: TCP and TLS over `Bun.connect` and `Bun.listen`, whose
 * callback sockets are adapted to Web Streams with backpressure both ways.
 * `Bun` is reached only inside functions, so importing this module on another
 * runtime is harmless, and it type-checks without Bun's types.
 *
 * @module
 */
import type * as t from "../transport.ts";

// An entry point of its own: the types its export refers to come with it.
export type * from "../transport.ts";

// The subset of Bun 1.4's socket API used here (see the `bun-types` package).
interface BunSocket {
  data: ReturnType<typeof pipe> | undefined;
  write(bytes: Uint8Array): number; // bytes taken; -1 once closed
  end(): void;
  shutdown(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay: boolean): boolean;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
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

const closedError = () => new Error("Cannot write to a closed transport");

/** One socket's streams, and what its callbacks do to them. */
function pipe(socket: BunSocket) {
  let queue!: ReadableStreamDefaultController<Uint8Array>;
  let pending: { bytes: Uint8Array } & PromiseWithResolvers<void> | undefined;
  let paused = false, readDone = false, writeDone = false, closed = false;
  let failure: Error | undefined;
  const pause = () => {
    if (!paused && !closed) socket.pause();
    paused = true;
  };
  const endReadable = (error?: Error) => {
    if (!readDone) error ? queue.error(error) : queue.close();
    readDone = true;
  };
  const close = () => {
    if (closed) return;
    closed = true;
    // end(), not terminate(): like close(2) on Deno, the kernel still sends
    // what it holds, then a FIN. terminate() resets (SO_LINGER 0), and the
    // peer may then drop bytes it was sent, such as a close frame.
    socket.end();
  };
  // Nothing can use the socket once both directions are over.
  const finish = () => readDone && writeDone && close();
  // Holds only the chunk the WritableStream is writing: its write() resolves
  // once the socket took every byte, resuming on `drain`.
  const flush = () => {
    if (!pending) return;
    const taken = closed ? -1 : socket.write(pending.bytes);
    if (taken >= 0 && taken < pending.bytes.byteLength) {
      pending.bytes = pending.bytes.subarray(taken);
    } else {
      const { resolve, reject } = pending;
      pending = undefined;
      taken < 0 ? reject(failure ?? closedError()) : resolve();
    }
  };
  socket.setNoDelay(true);
  const readable = new ReadableStream<Uint8Array>({
    start: (controller) => void (queue = controller),
    pull: () => { // below the high-water mark again
      if (paused && !closed) socket.resume();
      paused = false;
    },
    cancel: () => {
      readDone = true;
      pause();
      finish();
    },
  }, { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength });
  const writable = new WritableStream<Uint8Array>({
    write: (bytes) => {
      const write = pending = { bytes, ...Promise.withResolvers<void>() };
      flush();
      return write.promise;
    },
    close: () => {
      writeDone = true;
      if (!closed) socket.shutdown(); // a FIN; reading goes on
      finish();
    },
    abort: close,
  });
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  const localAddr = { hostname: localAddress, port: localPort };
  const remoteAddr = { hostname: remoteAddress, port: remotePort };
  return {
    transport: { readable, writable, close, localAddr, remoteAddr },
    // Bun gives every `data` event a fresh buffer (checked on Bun 1.4.5), so
    // chunks are queued uncopied. A full queue stops reading until pull():
    // the kernel buffers fill up, and TCP flow control stops the peer.
    data(bytes: Uint8Array) {
      if (readDone) return;
      queue.enqueue(bytes);
      if ((queue.desiredSize ?? 0) <= 0) pause();
    },
    drain: flush,
    end() {
      endReadable();
      finish();
    },
    // A failed TLS session or a throwing handler; `close` follows.
    error: (error: Error) => void (failure = error),
    closed(error = failure) {
      failure = error;
      closed = true;
      endReadable(error);
      flush(); // rejects a pending write
    },
  };
}

const handlers = {
  binaryType: "uint8array" as const,
  open: ((socket) => void (socket.data ??= pipe(socket))) as Handler,
  data: ((socket, bytes) => socket.data?.data(bytes)) as Handler<[Uint8Array]>,
  drain: ((socket) => socket.data?.drain()) as Handler,
  end: ((socket) => socket.data?.end()) as Handler,
  close: ((socket, error) => socket.data?.closed(error)) as Handler<[Error?]>,
  error: ((socket, error) => socket.data?.error(error)) as Handler<[Error]>,
};

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
    return (socket.data ??= pipe(socket)).transport;
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
        const { transport } = socket.data ??= pipe(socket);
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
};
