/**
 * The Deno transport: TCP and TLS over `Deno.connect`, `Deno.startTls`,
 * `Deno.listen` and `Deno.listenTls`. `Deno` is touched only inside
 * functions, so importing this module on another runtime is harmless.
 *
 * @module
 */
import type { ChannelReader } from "../byte_channel.ts";
import { PayloadBuffers } from "../payload_buffers.ts";
import { SocketChannel } from "../_socket_channel.ts";
import type * as t from "../transport.ts";

// An entry point of its own: the types its export refers to come with it.
export type * from "../transport.ts";

type Conn = Deno.Conn<Deno.NetAddr>;
// Reads go into a fresh buffer each time (its views are handed on), sized to
// the traffic: a read that fills its buffer doubles the next one, up to
// MAX_READ; one that uses less than a quarter quarters it, down to MIN_READ.
// The first read (an HTTP head) gets FIRST_READ; an idle connection, whose
// pending read holds its buffer, soon costs MIN_READ. MAX_READ is well over
// 64 KiB so that a 64 KiB message mostly arrives whole in one read and is
// handed on as a view: at 64 KiB, every such frame (64 KiB + header) spanned
// two reads and was copied into a buffer of its own (the 64 KiB echo went
// from about 0.85x to 1.02-1.17x Deno native; 512 KiB was no faster).
const FIRST_READ = 2048;
const MIN_READ = 512;
const MAX_READ = 256 * 1024;

const address = ({ hostname, port }: Deno.NetAddr) => ({ hostname, port });

// close() must never throw; Deno's throws BadResource once closed.
function closeQuietly(closable: { close(): void }): void {
  try {
    closable.close();
  } catch { /* already closed */ }
}

// Deno's own `conn.readable` closes the whole conn when it reads EOF, and so
// does `conn.writable.close()` (Deno 2.9): the peer's FIN would end our
// writing, and our FIN our reading. The channel uses read/write/closeWrite,
// which keeps half-close: a read is one `conn.read`, and queued writes go out
// one `conn.write` at a time until the kernel took every byte.
class DenoChannel extends SocketChannel {
  readonly #conn: Conn;
  /** Unsent bytes, in order; the first is being written. */
  #queue: Uint8Array[] = [];
  #readSize = FIRST_READ;

  constructor(conn: Conn) {
    super();
    this.#conn = conn;
  }

  // Made when asked for (the conn keeps its own): not held by every
  // idle connection.
  get localAddr(): t.Address {
    return address(this.#conn.localAddr);
  }

  get remoteAddr(): t.Address {
    return address(this.#conn.remoteAddr);
  }

  // `read()` comes from SocketChannel, made of this. No promise of its own
  // besides Deno's, and not an async function: an idle connection waits
  // here, and a suspended async frame would hold more than these closures.
  override readTo(reader: ChannelReader): void {
    if (this.closed) {
      const failure = this.failure;
      queueMicrotask(() =>
        failure !== null ? reader.failed(failure.error) : reader.received(null)
      );
      return;
    }
    // The reader's own buffer when it has one (the rest of a large message):
    // the bytes are then read where they belong, and not copied there.
    const target = reader.nextBuffer?.() ?? null;
    const buffer = target ?? new Uint8Array(this.#readSize);
    this.#conn.read(buffer).then((n) => {
      if (n === null) return reader.received(null);
      // A read into the reader's buffer says nothing of the read size.
      if (target === null) this.#adaptReadSize(n);
      reader.received(buffer.subarray(0, n));
    }, (error) => {
      // Our own close() interrupts a pending read: an end, not a failure.
      if (this.failure !== null) reader.failed(this.failure.error);
      else if (!this.closed) reader.failed(error);
      else reader.received(null);
    });
  }

  #adaptReadSize(n: number): void {
    if (n === this.#readSize) {
      this.#readSize = Math.min(this.#readSize * 2, MAX_READ);
    } else if (n < this.#readSize >>> 2) {
      this.#readSize = Math.max(this.#readSize >>> 2, MIN_READ);
    }
  }

  write(bytes: Uint8Array): void {
    this.checkWritable();
    if (bytes.length === 0) return;
    this.#queue.push(bytes);
    this.bufferedAmount += bytes.length;
    if (this.#queue.length === 1) void this.#pump();
  }

  async #pump(): Promise<void> {
    const queue = this.#queue;
    try {
      while (queue.length > 0 && !this.closed) {
        const bytes = queue[0]!;
        const n = await this.#conn.write(bytes);
        this.bufferedAmount -= n;
        if (n < bytes.length) queue[0] = bytes.subarray(n);
        else queue.shift();
      }
    } catch (error) {
      if (!this.closed) return this.fail(error);
    }
    this.settle();
  }

  async closeWrite(): Promise<void> {
    await this.drained();
    try {
      await this.#conn.closeWrite();
    } catch (error) {
      if (!this.closed) throw error;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true; // first: the read or write it interrupts checks it
    closeQuietly(this.#conn);
    this.settle();
  }
}

// A socket's channel is its transport (see SocketChannel).
const wrap = (conn: Conn): t.Transport => new DenoChannel(conn);

async function connect(
  options: t.ConnectTransportOptions,
): Promise<t.Transport> {
  const { hostname, port, tls, signal } = options;
  signal?.throwIfAborted();
  const tcp = await Deno.connect({
    hostname,
    port,
    ...(signal ? { signal } : {}),
  });
  tcp.setNoDelay(true);
  if (!tls) {
    if (!signal?.aborted) return wrap(tcp);
    tcp.close();
    throw signal.reason;
  }
  // `Deno.connectTls` has no `serverName`; `startTls` on a TCP conn has.
  const conn = await Deno.startTls(tcp, {
    hostname: tls.serverName ?? hostname,
    ...(tls.caCerts ? { caCerts: tls.caCerts } : {}),
  });
  const onAbort = () => closeQuietly(conn); // the handshake rejects then
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    signal?.throwIfAborted(); // during startTls
    // Handshake now, so that a bad certificate rejects here.
    await conn.handshake();
    signal?.throwIfAborted();
    return wrap(conn);
  } catch (error) {
    // Deno keeps the socket of a TLS conn closed mid-handshake open until the
    // handshake ends (denoland/deno#14547: closing waits for it).
    closeQuietly(conn);
    throw signal?.aborted ? signal.reason : error;
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
  const listener: Deno.Listener<Conn, Deno.NetAddr> = tls
    ? Deno.listenTls({ hostname, port, cert: tls.cert, key: tls.key })
    : Deno.listen({ hostname, port });
  let closed = false;
  (async () => {
    for (let delay = 0; !closed;) {
      let conn: Conn;
      try {
        conn = await listener.accept();
        delay = 0;
      } catch {
        // One failed accept (a reset, EMFILE) must not end the loop; a short
        // backoff keeps a lasting error from spinning.
        delay = Math.min(delay * 2 || 5, 100);
        if (!closed) await new Promise((wake) => setTimeout(wake, delay));
        continue;
      }
      // Deno 2.9 has setNoDelay on TCP conns only, not on accepted TLS ones.
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
      // A TLS handshake runs on first read: a client sending garbage fails
      // only its own transport, within the caller's timeouts.
      const transport = wrap(conn);
      try {
        onTransport(transport);
      } catch (error) {
        transport.close(); // nobody else holds it
        console.error("wsstream: onTransport threw", error);
      }
    }
  })();
  return {
    addr: address(listener.addr),
    close() {
      if (closed) return;
      closed = true; // first: the accept it interrupts checks it
      closeQuietly(listener);
    },
  };
}

/**
 * TCP and TLS transports for Deno. Closing `writable` sends a FIN and keeps
 * reading (half-close); once both directions are over the socket is closed.
 * Cancelling `readable` stops reading but keeps `writable` usable. A TLS
 * `connect` resolves once the handshake is done.
 *
 * @example Open a TCP transport
 * ```ts
 * import { denoTransports } from "@wsstream/wsstream/deno";
 * const open = () => denoTransports.connect({ hostname: "::1", port: 9001 });
 * ```
 */
export const denoTransports: t.RuntimeTransports = {
  name: "deno",
  connect,
  listen,
  // Small messages and frames share buffers: a new small Uint8Array costs
  // Deno about 1.2 µs (see payload_buffers.ts).
  payloadBuffers: new PayloadBuffers({ shareSmallBuffers: true }),
};
