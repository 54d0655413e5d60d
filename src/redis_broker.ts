/**
 * `RedisBroker`: a {@link Broker} over Redis pub/sub, with its own minimal
 * RESP client over `node:net` (Deno and Bun both have it), so the library
 * keeps no runtime dependency.
 *
 * @module
 */

import type { Broker } from "./pubsub.ts";
import type { Message } from "./protocol.ts";

/**
 * Options for {@link RedisBroker}.
 *
 * @example
 * ```ts
 * import type { RedisBrokerOptions } from "@wsstream/wsstream";
 * const options: RedisBrokerOptions = {
 *   url: "redis://:secret@127.0.0.1:6379",
 *   prefix: "chat:",
 * };
 * ```
 */
export interface RedisBrokerOptions {
  /**
   * `redis://[:password@]host[:port]` (default `redis://127.0.0.1:6379`).
   * A user name (`redis://user:password@…`) is sent with `AUTH` too.
   */
  url?: string;
  /**
   * Put before every topic to make the Redis channel name, so that several
   * applications can share one Redis (default `wsstream:`).
   */
  prefix?: string;
  /** The first wait before reconnecting, in ms (default 50); it doubles. */
  reconnectDelay?: number;
  /** The longest wait before reconnecting, in ms (default 2 000). */
  maxReconnectDelay?: number;
  /**
   * Most bytes waiting to be written to Redis; a publish beyond them is
   * lost (counted) rather than queued (default 8 MiB).
   */
  maxBufferedAmount?: number;
  /**
   * Told when a connection to Redis fails or drops (default: one
   * `console.warn` per outage). The broker reconnects by itself.
   */
  onError?: (error: unknown) => void;
}

/**
 * A {@link RedisBroker}'s counters.
 *
 * @example
 * ```ts
 * import type { RedisBrokerStats } from "@wsstream/wsstream";
 * const lossRate = (s: RedisBrokerStats) => (s.lost + s.missed) / Math.max(1, s.published);
 * ```
 */
export interface RedisBrokerStats {
  /** Messages handed to the broker by this process. */
  published: number;
  /** Of those, acknowledged by Redis (`PUBLISH` answered). */
  acknowledged: number;
  /**
   * Of those, lost here: published while Redis was unreachable or too far
   * behind, or sent but unanswered when the connection dropped (they may
   * have been delivered: at most once).
   */
  lost: number;
  /** Messages received from other processes. */
  received: number;
  /**
   * Messages of other processes that never arrived: gaps in their sequence
   * numbers (their losses, and ours while our subscription was down).
   */
  missed: number;
  /** Messages that arrived out of order or twice from one process (dropped). */
  reordered: number;
  /** Times a connection to Redis was made again after a drop. */
  reconnects: number;
  /** Whether both connections (publishing, subscribed) are up now. */
  connected: boolean;
}

type Reply = string | number | Uint8Array | null | RedisError | Reply[];

class RedisError extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF = [13, 10];
/** Envelope: kind (1 byte), origin (8), sequence number (float64, 8). */
const HEADER = 17;
const TEXT = 0x74; // "t"
const BINARY = 0x62; // "b"

/** A RESP command as bytes: an array of bulk strings. */
function command(parts: (string | Uint8Array)[]): Uint8Array {
  const bytes = parts.map((p) => typeof p === "string" ? encoder.encode(p) : p);
  const heads = bytes.map((b) => encoder.encode(`$${b.length}\r\n`));
  const start = encoder.encode(`*${parts.length}\r\n`);
  let size = start.length;
  for (let i = 0; i < bytes.length; i++) {
    size += heads[i]!.length + bytes[i]!.length + 2;
  }
  const out = new Uint8Array(size);
  out.set(start, 0);
  let at = start.length;
  for (let i = 0; i < bytes.length; i++) {
    out.set(heads[i]!, at);
    at += heads[i]!.length;
    out.set(bytes[i]!, at);
    at += bytes[i]!.length;
    out.set(CRLF, at);
    at += 2;
  }
  return out;
}

/** An incremental RESP2 reply parser. */
class ReplyParser {
  #buffer: Uint8Array = new Uint8Array(0);
  #at = 0;

  /** Adds bytes and returns every reply now complete. */
  push(chunk: Uint8Array): Reply[] {
    if (this.#at < this.#buffer.length) {
      const rest = this.#buffer.subarray(this.#at);
      const joined = new Uint8Array(rest.length + chunk.length);
      joined.set(rest, 0);
      joined.set(chunk, rest.length);
      this.#buffer = joined;
    } else this.#buffer = chunk;
    this.#at = 0;
    const replies: Reply[] = [];
    for (;;) {
      const parsed = this.#parse(this.#at);
      if (parsed === null) break;
      replies.push(parsed.value);
      this.#at = parsed.end;
    }
    return replies;
  }

  #line(from: number): { text: string; end: number } | null {
    const buffer = this.#buffer;
    for (let i = from; i + 1 < buffer.length; i++) {
      if (buffer[i] === 13 && buffer[i + 1] === 10) {
        return { text: decoder.decode(buffer.subarray(from, i)), end: i + 2 };
      }
    }
    return null;
  }

  #parse(at: number): { value: Reply; end: number } | null {
    if (at >= this.#buffer.length) return null;
    const type = this.#buffer[at];
    const line = this.#line(at + 1);
    if (line === null) return null;
    switch (type) {
      case 0x2b: // +
        return { value: line.text, end: line.end };
      case 0x2d: // -
        return { value: new RedisError(line.text), end: line.end };
      case 0x3a: // :
        return { value: Number(line.text), end: line.end };
      case 0x24: { // $
        const length = Number(line.text);
        if (length < 0) return { value: null, end: line.end };
        const end = line.end + length + 2;
        if (end > this.#buffer.length) return null;
        return {
          value: this.#buffer.subarray(line.end, line.end + length),
          end,
        };
      }
      case 0x2a: { // *
        const count = Number(line.text);
        if (count < 0) return { value: null, end: line.end };
        const items: Reply[] = [];
        let end = line.end;
        for (let i = 0; i < count; i++) {
          const item = this.#parse(end);
          if (item === null) return null;
          items.push(item.value);
          end = item.end;
        }
        return { value: items, end };
      }
      default:
        throw new RedisError(`Unexpected RESP type byte ${type}`);
    }
  }
}

interface NetSocket {
  write(bytes: Uint8Array): boolean;
  destroy(): void;
  setNoDelay(on: boolean): void;
  on(event: string, listener: (...args: never[]) => void): void;
  readonly writableLength: number;
}
type Net = {
  createConnection(options: { host: string; port: number }): NetSocket;
};

/** One connection to Redis that comes back after a drop. */
class Link {
  socket: NetSocket | null = null;
  up = false;
  #parser = new ReplyParser();
  #timer: ReturnType<typeof setTimeout> | null = null;
  #delay: number;
  #closed = false;
  #closing: Promise<void> | null = null;
  #everUp = false;

  constructor(
    readonly broker: RedisBroker,
    readonly host: string,
    readonly port: number,
    readonly hello: Uint8Array[],
    readonly onReady: () => void,
    readonly onReply: (reply: Reply) => void,
    readonly onDown: () => void,
  ) {
    this.#delay = broker.options.reconnectDelay;
  }

  async open(): Promise<void> {
    if (this.#closed) return;
    const net = await loadNet();
    if (this.#closed) return;
    const socket = net.createConnection({ host: this.host, port: this.port });
    this.socket = socket;
    this.#parser = new ReplyParser();
    this.#pendingHello = 0;
    let done: () => void = () => {};
    this.#closing = new Promise((resolve) => done = resolve);
    socket.setNoDelay(true);
    socket.on("connect", () => {
      for (const bytes of this.hello) socket.write(bytes);
      if (this.hello.length === 0) this.#becomeUp();
    });
    socket.on("data", (chunk: Uint8Array) => {
      let replies: Reply[];
      try {
        replies = this.#parser.push(chunk);
      } catch (error) {
        this.broker.reportError(error);
        socket.destroy();
        return;
      }
      for (const reply of replies) {
        if (!this.up && this.#handshake(reply)) continue;
        this.onReply(reply);
      }
    });
    socket.on("error", (error: unknown) => this.broker.reportError(error));
    socket.on("close", () => {
      done();
      if (this.socket === socket) this.socket = null;
      this.up = false;
      this.onDown();
      if (this.#closed) return;
      this.#timer = setTimeout(() => {
        this.#timer = null;
        void this.open();
      }, this.#delay);
      this.#delay = Math.min(
        this.#delay * 2,
        this.broker.options.maxReconnectDelay,
      );
    });
  }

  /** Answers to the hello commands (AUTH, PSUBSCRIBE); true when taken. */
  #pendingHello = 0;
  #handshake(reply: Reply): boolean {
    if (reply instanceof RedisError) {
      this.broker.reportError(reply);
      this.socket?.destroy();
      return true;
    }
    if (++this.#pendingHello < this.hello.length) return true;
    this.#pendingHello = 0;
    this.#becomeUp();
    return true;
  }

  #becomeUp(): void {
    this.up = true;
    if (this.#everUp) this.broker.countReconnect();
    this.#everUp = true;
    this.#delay = this.broker.options.reconnectDelay;
    this.onReady();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.socket?.destroy();
    await this.#closing;
  }
}

let netModule: Promise<Net> | null = null;
/** `node:net`, loaded only when a broker connects. */
function loadNet(): Promise<Net> {
  return netModule ??= import("node:net") as unknown as Promise<Net>;
}

function randomOrigin(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(8));
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Escapes Redis glob characters, so a prefix matches only itself. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

/**
 * A {@link Broker} over Redis pub/sub: give it to `PubSub`, and every
 * process started with the same Redis (and prefix) shares the topics. It
 * speaks RESP to Redis itself over `node:net`, on two connections (one
 * publishing, one subscribed to `prefix*`), and reconnects by itself
 * after a drop.
 *
 * What it promises:
 * - **At most once**: Redis pub/sub does not store messages; a message
 *   published while Redis is unreachable, or while a process's
 *   subscription is down, is lost. Losses are counted, never silent:
 *   `stats.lost` on the publisher, `stats.missed` on a receiver (every
 *   message carries its publisher's sequence number, so gaps show).
 * - **In order per publisher and topic** (in fact per publisher): a
 *   process publishes on one connection, Redis delivers in the order it
 *   received, and a receiver drops anything that would go backwards
 *   (counted in `stats.reordered`).
 * - No order between publishers, and no delivery back to the publishing
 *   process (its own subscribers got the message locally).
 *
 * Every process receives every message under the prefix, whether or not it
 * has subscribers to its topic: fine for chat rooms and dashboards, costly
 * for a few subscribers among very many topics.
 *
 * @example Two processes' worth of topics over one Redis
 * ```ts ignore
 * import { PubSub, RedisBroker } from "@wsstream/wsstream";
 *
 * const topics = new PubSub({
 *   broker: new RedisBroker({ url: "redis://127.0.0.1:6379" }),
 * });
 * // Subscribers of "rooms/lobby" in every process get it:
 * await topics.publish("rooms/lobby", "hello");
 * ```
 */
export class RedisBroker implements Broker {
  /** The options, with their defaults. @internal */
  readonly options: Required<Omit<RedisBrokerOptions, "url" | "onError">>;
  readonly #host: string;
  readonly #port: number;
  readonly #auth: Uint8Array[];
  readonly #onError: (error: unknown) => void;
  readonly #origin = randomOrigin();
  readonly #originHex = hex(this.#origin);
  #sequence = 0;
  /** PUBLISH commands written and not yet answered. */
  #inFlight = 0;
  /** Commands gathered in this task, written together. */
  #batch: Uint8Array[] = [];
  #batchBytes = 0;
  #lastSeen = new Map<string, number>();
  #publisher: Link | null = null;
  #subscriber: Link | null = null;
  #ready = Promise.withResolvers<void>();
  #warned = false;
  #closed = false;
  readonly #stats: Omit<RedisBrokerStats, "connected"> = {
    published: 0,
    acknowledged: 0,
    lost: 0,
    received: 0,
    missed: 0,
    reordered: 0,
    reconnects: 0,
  };

  /**
   * Makes a broker; it connects when `PubSub` starts it.
   *
   * @param options The Redis URL, channel prefix, reconnect delays and limits.
   * @throws {TypeError} for a URL that is not `redis://`.
   * @throws {RangeError} for a negative delay or limit.
   */
  constructor(options: RedisBrokerOptions = {}) {
    const url = new URL(options.url ?? "redis://127.0.0.1:6379");
    if (url.protocol !== "redis:") {
      throw new TypeError(
        `RedisBroker needs a redis:// URL, got ${url.protocol}// (TLS is not supported)`,
      );
    }
    this.#host = url.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1";
    this.#port = Number(url.port || "6379");
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    this.#auth = password === ""
      ? []
      : [command(user === "" ? ["AUTH", password] : ["AUTH", user, password])];
    for (
      const key of [
        "reconnectDelay",
        "maxReconnectDelay",
        "maxBufferedAmount",
      ] as const
    ) {
      const value = options[key];
      if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
        throw new RangeError(
          `RedisBroker: ${key} must be a number ≥ 0, got ${value}`,
        );
      }
    }
    this.options = {
      prefix: options.prefix ?? "wsstream:",
      reconnectDelay: options.reconnectDelay ?? 50,
      maxReconnectDelay: options.maxReconnectDelay ?? 2000,
      maxBufferedAmount: options.maxBufferedAmount ?? 8 * 1024 * 1024,
    };
    this.#onError = options.onError ?? ((error) => {
      if (this.#warned) return;
      this.#warned = true;
      console.warn(`RedisBroker: ${String(error)}; reconnecting`);
    });
  }

  /** The counters (a snapshot). */
  get stats(): RedisBrokerStats {
    return {
      ...this.#stats,
      connected: this.#publisher?.up === true &&
        this.#subscriber?.up === true,
    };
  }

  /** Resolves once both connections to Redis are up for the first time. */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /**
   * Connects to Redis and subscribes to every topic under the prefix.
   *
   * @param deliver Called with each message other processes publish.
   * @returns Resolves once connected the first time (see `ready`).
   */
  start(deliver: (topic: string, message: Message) => void): Promise<void> {
    if (this.#publisher !== null) {
      throw new TypeError("RedisBroker.start: already started");
    }
    const prefix = this.options.prefix;
    const checkReady = () => {
      if (this.#publisher?.up && this.#subscriber?.up) this.#ready.resolve();
    };
    this.#publisher = new Link(
      this,
      this.#host,
      this.#port,
      this.#auth,
      checkReady,
      (reply) => {
        if (reply instanceof RedisError) this.reportError(reply);
        if (this.#inFlight > 0) {
          this.#inFlight--;
          if (!(reply instanceof RedisError)) this.#stats.acknowledged++;
          else this.#stats.lost++;
        }
      },
      () => {
        // Written but never answered: perhaps delivered, perhaps not.
        this.#stats.lost += this.#inFlight;
        this.#inFlight = 0;
      },
    );
    const prefixBytes = encoder.encode(prefix).length;
    this.#subscriber = new Link(
      this,
      this.#host,
      this.#port,
      [...this.#auth, command(["PSUBSCRIBE", escapeGlob(prefix) + "*"])],
      checkReady,
      (reply) => {
        if (!Array.isArray(reply) || reply[0] === undefined) return;
        const kind = reply[0];
        if (
          !(kind instanceof Uint8Array) || decoder.decode(kind) !== "pmessage"
        ) return;
        const channel = reply[2];
        const payload = reply[3];
        if (
          !(channel instanceof Uint8Array) || !(payload instanceof Uint8Array)
        ) return;
        if (payload.length < HEADER) return;
        this.#receive(
          decoder.decode(channel.subarray(prefixBytes)),
          payload,
          deliver,
        );
      },
      () => {},
    );
    void this.#publisher.open();
    void this.#subscriber.open();
    return this.#ready.promise;
  }

  #receive(
    topic: string,
    payload: Uint8Array,
    deliver: (topic: string, message: Message) => void,
  ): void {
    const origin = hex(payload.subarray(1, 9));
    if (origin === this.#originHex) return; // ours: delivered locally
    const sequence = new DataView(
      payload.buffer,
      payload.byteOffset + 9,
      8,
    ).getFloat64(0);
    const last = this.#lastSeen.get(origin);
    if (last !== undefined) {
      if (sequence <= last) {
        this.#stats.reordered++;
        return;
      }
      this.#stats.missed += sequence - last - 1;
    }
    this.#lastSeen.set(origin, sequence);
    this.#stats.received++;
    const data = payload.subarray(HEADER);
    deliver(
      topic,
      // A plain Uint8Array, not the socket's Buffer (a subclass).
      payload[0] === TEXT ? decoder.decode(data) : new Uint8Array(data),
    );
  }

  /**
   * Publishes a message to the other processes: written to Redis with the
   * other commands of this task, or counted as lost when Redis is
   * unreachable or more than `maxBufferedAmount` bytes behind.
   *
   * @param topic The topic.
   * @param message The message.
   */
  publish(topic: string, message: Message): void {
    this.#stats.published++;
    const sequence = ++this.#sequence;
    const link = this.#publisher;
    const socket = link?.socket;
    if (
      link === null || !link.up || socket == null ||
      socket.writableLength + this.#batchBytes >
        this.options.maxBufferedAmount
    ) {
      this.#stats.lost++;
      return;
    }
    const data = typeof message === "string"
      ? encoder.encode(message)
      : message;
    const payload = new Uint8Array(HEADER + data.length);
    payload[0] = typeof message === "string" ? TEXT : BINARY;
    payload.set(this.#origin, 1);
    new DataView(payload.buffer).setFloat64(9, sequence);
    payload.set(data, HEADER);
    const bytes = command(["PUBLISH", this.options.prefix + topic, payload]);
    this.#inFlight++;
    this.#batchBytes += bytes.length;
    if (this.#batch.push(bytes) === 1) queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    const batch = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    const socket = this.#publisher?.socket;
    if (socket == null || !this.#publisher!.up) {
      // Dropped since: the link's end already counted them as lost.
      return;
    }
    if (batch.length === 1) socket.write(batch[0]!);
    else {
      let size = 0;
      for (const b of batch) size += b.length;
      const joined = new Uint8Array(size);
      let at = 0;
      for (const b of batch) {
        joined.set(b, at);
        at += b.length;
      }
      socket.write(joined);
    }
  }

  /** Closes both connections to Redis and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#publisher?.close(), this.#subscriber?.close()]);
  }

  /** @internal */
  reportError(error: unknown): void {
    try {
      this.#onError(error);
    } catch { /* the hook's own failure must not stop reconnecting */ }
  }

  /** @internal */
  countReconnect(): void {
    this.#stats.reconnects++;
  }
}
