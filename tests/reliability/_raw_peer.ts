/**
 * A raw WebSocket end over a real socket, for the bounded-memory tests: it
 * does the opening handshake by hand, as a client against `serve()` or as a
 * server for `connect()`, and then leaves the socket to the test, which
 * floods it with frames or never reads it. (The conformance suite's peer
 * always reads, so it cannot play a peer that does not.)
 *
 * @module
 */
import { encodeFrame, Opcode } from "../../src/frame.ts";
import { computeAccept } from "../../src/handshake.ts";
import { currentRuntime } from "../../src/runtime.ts";
import type { Listener, Transport } from "../../src/transport.ts";

const HOST = "127.0.0.1";
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** A raw end after the opening handshake. */
export interface RawEnd {
  /** The socket; `close()` drops it. */
  transport: Transport;
  /** Its writer: the test writes frames with it. */
  writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Its reader: reading it, or not, is up to the test. */
  reader: ReadableStreamDefaultReader<Uint8Array>;
  /** Whether this end plays the client (so its frames must be masked). */
  client: boolean;
}

/** Reads up to the end of an HTTP head; returns its first line. */
async function readHeadLine(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<string> {
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the socket ended during the opening handshake");
    text += latin1.decode(value);
  }
  // Bytes past the head are dropped: these tests count what they read, and
  // never decode it.
  return text.slice(0, text.indexOf("\r\n"));
}

/** Connects to `serve()` on `port` and does the client's handshake. */
export async function rawClient(port: number): Promise<RawEnd> {
  const transport = await currentRuntime().connect({ hostname: HOST, port });
  const writer = transport.writable.getWriter();
  const reader = transport.readable.getReader();
  try {
    await writer.write(encoder.encode(
      `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n` +
        "Sec-WebSocket-Version: 13\r\n\r\n",
    ));
    const status = await readHeadLine(reader);
    if (!status.startsWith("HTTP/1.1 101 ")) {
      throw new Error(`expected 101 Switching Protocols, got ${status}`);
    }
    return { transport, writer, reader, client: true };
  } catch (error) {
    transport.close();
    throw error;
  }
}

/** A listener that answers one client's handshake by hand. */
export interface RawServer {
  /** The port it listens on. */
  port: number;
  /** The raw end of the first connection, once its handshake is done. */
  accepted: Promise<RawEnd>;
  /** Stops listening (and drops a connection not yet handed out). */
  close(): void;
}

/** Listens on 127.0.0.1 for one `connect()` and plays the server's handshake. */
export async function rawServer(): Promise<RawServer> {
  const first = Promise.withResolvers<RawEnd>();
  first.promise.catch(() => {}); // the caller awaits it; never unhandled
  let listener: Listener | null = null;
  const extra: Transport[] = [];
  listener = await currentRuntime().listen(
    { hostname: HOST, port: 0 },
    (transport) => {
      if (extra.length > 0 || listener === null) {
        transport.close();
        return;
      }
      extra.push(transport);
      void (async () => {
        const writer = transport.writable.getWriter();
        const reader = transport.readable.getReader();
        let text = "";
        while (!text.includes("\r\n\r\n")) {
          const { value, done } = await reader.read();
          if (done) throw new Error("the client left during the handshake");
          text += latin1.decode(value);
        }
        const key = /^sec-websocket-key:\s*(\S+)\s*$/im.exec(text)?.[1];
        if (key === undefined) throw new Error("no Sec-WebSocket-Key");
        await writer.write(encoder.encode(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
            "Connection: Upgrade\r\n" +
            `Sec-WebSocket-Accept: ${await computeAccept(key)}\r\n\r\n`,
        ));
        first.resolve({ transport, writer, reader, client: false });
      })().catch((error) => {
        transport.close();
        first.reject(error);
      });
    },
  );
  return {
    port: listener.addr.port,
    accepted: first.promise,
    close() {
      listener?.close();
    },
  };
}

/** One binary frame of `size` bytes, masked when `end` plays the client. */
export function binaryFrame(end: RawEnd, size: number): Uint8Array {
  const payload = new Uint8Array(size).fill(0x5a);
  const key = end.client ? new Uint8Array([0x12, 0x34, 0x56, 0x78]) : null;
  return encodeFrame(
    { fin: true, rsv: 0, opcode: Opcode.Binary, payload },
    key,
  );
}

/**
 * Writes `frame` over and over as fast as the socket takes it, until
 * `stop()`; `bytes` counts what the socket took. Reuses the one buffer, so
 * the flood allocates nothing itself.
 */
export class Flooder {
  /** Bytes the socket has taken. */
  bytes = 0;
  /** Settles when the flood has stopped (a failed write ends it quietly). */
  readonly done: Promise<void>;
  #stopped = false;

  /**
   * @param end The raw end to write to.
   * @param frame The frame to write, again and again.
   */
  constructor(end: RawEnd, frame: Uint8Array) {
    this.done = (async () => {
      try {
        while (!this.#stopped) {
          await end.writer.write(frame);
          this.bytes += frame.length;
        }
      } catch {
        // The connection was dropped: the flood is over.
      }
    })();
  }

  /** Stops after the write under way (which may never finish: drop the socket). */
  stop(): void {
    this.#stopped = true;
  }
}
