/**
 * Topics: connections (and in-process listeners) subscribe to topics or
 * glob patterns of topics, and `publish` frames a message once for all of
 * them. A broker (`src/redis_broker.ts`) shares the topics between
 * processes.
 *
 * @module
 */

import type { WebSocketConnection } from "./connection.ts";
import { pendingBytes, sendEncoded } from "./_connection_internals.ts";
import { encodeFrame, Opcode } from "./frame.ts";
import type { Message } from "./protocol.ts";

/**
 * What `publish` does with a subscriber that has more than
 * `maxBufferedAmount` bytes not yet written to its socket:
 *
 * - `wait`: sends it the message anyway; the promise `publish` returns waits
 *   until that subscriber's transport has room again (the slowest subscriber
 *   paces the publisher).
 * - `skip`: does not send it this message; counted in `stats.skipped` and
 *   reported to `onDrop`.
 * - `close`: closes it with 1013 "Try Again Later" (RFC 6455 §7.4.1 lists
 *   1013 in the IANA registry as "Try Again Later"); counted in
 *   `stats.closed` and reported to `onDrop`.
 */
export type SlowSubscriberPolicy = "wait" | "skip" | "close";

/**
 * How a topic treats subscribers that fall behind (see
 * {@link SlowSubscriberPolicy}).
 *
 * @example
 * ```ts
 * import type { TopicPolicy } from "@wsstream/wsstream";
 * const ticker: TopicPolicy = { slow: "skip", maxBufferedAmount: 256 * 1024 };
 * ```
 */
export interface TopicPolicy {
  /** What to do with a subscriber that is too far behind (default `wait`). */
  slow?: SlowSubscriberPolicy;
  /**
   * Bytes taken by a connection and not yet written to its socket above
   * which it is too far behind (default 1 MiB, 1 048 576).
   */
  maxBufferedAmount?: number;
}

/**
 * A message a subscriber did not get, as `onDrop` hears of it.
 *
 * @example
 * ```ts
 * import type { DropEvent } from "@wsstream/wsstream";
 * const log = (drop: DropEvent) =>
 *   console.warn(`${drop.action} a slow subscriber of ${drop.topic}`);
 * ```
 */
export interface DropEvent {
  /** The topic published to. */
  topic: string;
  /** The subscriber that did not get it. */
  connection: WebSocketConnection;
  /** `skipped` (this message only) or `closed` (with 1013). */
  action: "skipped" | "closed";
  /** The bytes it had pending when the message came. */
  pendingBytes: number;
}

/**
 * Counters of a {@link PubSub}: every message either reached a subscriber's
 * send path or is counted here as not delivered.
 *
 * @example
 * ```ts
 * import { PubSub } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 * const { published, skipped } = new PubSub().stats;
 * assert.equal(published + skipped, 0);
 * ```
 */
export interface PubSubStats {
  /** Messages published in this process. */
  published: number;
  /** Messages received from the broker (published by other processes). */
  received: number;
  /** Messages handed to a subscriber's send path (or a listener). */
  delivered: number;
  /** Of those, sent with the shared frame (the rest were encoded per connection). */
  shared: number;
  /** Messages not sent to a slow subscriber under the `skip` policy. */
  skipped: number;
  /** Slow subscribers closed with 1013 under the `close` policy. */
  closed: number;
  /** Sends that failed because the subscriber's connection was closing or gone. */
  failed: number;
}

/**
 * Shares topics between processes: `PubSub` hands it every message
 * published here and it calls `deliver` with every message published by
 * the others (never with this process's own).
 *
 * What a broker must promise, and what `RedisBroker` does: **at most once**
 * (a message reaches each other process once or not at all; one lost while
 * the broker is unreachable is counted, never retried) and **in order per
 * publisher and topic** (two messages published by one process to one topic
 * arrive everywhere in the order they were published). There is no order
 * between publishers, and none between topics.
 *
 * @example A broker that loops messages between two PubSubs in one process
 * ```ts
 * import { type Broker, PubSub } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const peers: ((topic: string, message: string | Uint8Array) => void)[] = [];
 * const broker = (): Broker => {
 *   let mine: ((topic: string, message: string | Uint8Array) => void) | null = null;
 *   return {
 *     start(deliver) {
 *       peers.push(mine = deliver);
 *     },
 *     publish(topic, message) {
 *       for (const deliver of peers) if (deliver !== mine) deliver(topic, message);
 *     },
 *     async close() {},
 *   };
 * };
 * const a = new PubSub({ broker: broker() });
 * const b = new PubSub({ broker: broker() });
 * const got: string[] = [];
 * b.listen("news", (_topic, message) => got.push(String(message)));
 * await a.publish("news", "hello");
 * assert.deepEqual(got, ["hello"]);
 * ```
 */
export interface Broker {
  /**
   * Starts passing on messages published by other processes.
   *
   * @param deliver Called with each one's topic and message.
   */
  start(
    deliver: (topic: string, message: Message) => void,
  ): void | Promise<void>;
  /**
   * Passes a message published here on to the other processes. It must not
   * throw: a message it cannot pass on is counted as lost by the broker.
   *
   * @param topic The topic.
   * @param message The message.
   */
  publish(topic: string, message: Message): void;
  /** Stops, releasing its connections. */
  close(): Promise<void>;
}

/**
 * Options for {@link PubSub}.
 *
 * @example
 * ```ts
 * import type { PubSubOptions } from "@wsstream/wsstream";
 * const options: PubSubOptions = {
 *   slow: "close",
 *   onDrop: (drop) => console.warn(drop.action, drop.topic),
 * };
 * ```
 */
export interface PubSubOptions extends TopicPolicy {
  /** Told of every message a subscriber did not get (see `stats` too). */
  onDrop?: (drop: DropEvent) => void;
  /** Shares the topics with other processes. */
  broker?: Broker;
}

/** In-process subscriber: called with each message published to a match. */
export type TopicListener = (topic: string, message: Message) => void;

type Subscriber = WebSocketConnection | TopicListener;

interface Pattern {
  regexp: RegExp;
  subscribers: Set<Subscriber>;
}

const DEFAULT_MAX_BUFFERED = 1024 * 1024;
const encoder = new TextEncoder();
const GLOB_CHARS = /[*?]/;

/**
 * Compiles a topic glob: `*` matches any run of characters but `/`, `**`
 * any run at all, `?` one character but `/`; everything else is itself.
 */
function globRegExp(glob: string): RegExp {
  let source = "^";
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!;
    if (char === "*" && glob[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (char === "*") source += "[^/]*";
    else if (char === "?") source += "[^/]";
    else source += char.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(source + "$", "s");
}

/**
 * Whether `topic` matches the glob `pattern` (`*`: any run of characters
 * but `/`; `**`: any run; `?`: one character but `/`).
 *
 * @param pattern The glob.
 * @param topic The topic.
 * @returns `true` when it matches.
 *
 * @example
 * ```ts
 * import { matchTopic } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 * assert.ok(matchTopic("rooms/*", "rooms/lobby"));
 * assert.ok(!matchTopic("rooms/*", "rooms/a/b"));
 * assert.ok(matchTopic("rooms/**", "rooms/a/b"));
 * ```
 */
export function matchTopic(pattern: string, topic: string): boolean {
  checkTopic(pattern, "pattern");
  checkTopic(topic, "topic");
  return GLOB_CHARS.test(pattern)
    ? globRegExp(pattern).test(topic)
    : pattern === topic;
}

function checkTopic(topic: unknown, what: string): asserts topic is string {
  if (typeof topic !== "string") {
    throw new TypeError(
      `Cannot use ${typeof topic} as a ${what}: expected a string`,
    );
  }
  if (topic.length === 0) {
    throw new RangeError(`Cannot use an empty ${what}`);
  }
}

function checkPolicy(policy: TopicPolicy, what: string): void {
  const slow = policy.slow;
  if (
    slow !== undefined && slow !== "wait" && slow !== "skip" &&
    slow !== "close"
  ) {
    throw new TypeError(
      `${what}: slow must be "wait", "skip" or "close", got ${String(slow)}`,
    );
  }
  const max = policy.maxBufferedAmount;
  if (max !== undefined && !(Number.isSafeInteger(max) && max >= 0)) {
    throw new RangeError(
      `${what}: maxBufferedAmount must be a whole number of bytes, got ${max}`,
    );
  }
}

/**
 * Topics for WebSocket connections: `subscribe` a connection to a topic or
 * a glob of topics, and `publish` a message to every subscriber of the
 * topic. The message is framed **once**, and the same frame bytes are
 * written to every subscriber (server frames are not masked, RFC 6455
 * §5.1); a connection that cannot take them (one with permessage-deflate
 * agreed compresses with its own context) gets the message sent on its own.
 *
 * A subscriber too far behind (more than `maxBufferedAmount` bytes not yet
 * on its socket) is waited for, skipped, or closed with 1013, per topic
 * (see {@link SlowSubscriberPolicy}); skips and closes are counted in
 * `stats` and told to `onDrop`, never silent. A connection leaves all its
 * topics when it closes. With a `broker`, messages reach the subscribers
 * of other processes too (see {@link Broker} for what that promises).
 *
 * @example A room: every member gets what one publishes
 * ```ts
 * import { connect, PubSub, serve } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const topics = new PubSub();
 * const server = await serve({ hostname: "127.0.0.1", port: 0 }, async (connection) => {
 *   topics.subscribe(connection, "rooms/lobby");
 *   for await (const message of connection) await topics.publish("rooms/lobby", message);
 * });
 * const url = `ws://127.0.0.1:${server.addr.port}`;
 * const [alice, bob] = await Promise.all([connect(url), connect(url)]);
 * while (topics.subscriberCount("rooms/lobby") < 2) await new Promise((r) => setTimeout(r, 5));
 * await alice.send("hi all");
 * for await (const message of bob) {
 *   assert.equal(message, "hi all");
 *   break;
 * }
 * await alice.close();
 * await server.close();
 * ```
 */
export class PubSub {
  /** Subscribers of exact topics. */
  readonly #exact = new Map<string, Set<Subscriber>>();
  /** Subscribers of globs, by glob. */
  readonly #patterns = new Map<string, Pattern>();
  /** What each subscriber is subscribed to, to leave it all at once. */
  readonly #subscriptions = new Map<Subscriber, Set<string>>();
  /** Policies by topic glob, in the order set (the last match wins). */
  readonly #policies = new Map<string, Required<TopicPolicy>>();
  readonly #default: Required<TopicPolicy>;
  readonly #onDrop: ((drop: DropEvent) => void) | undefined;
  readonly #broker: Broker | null;
  readonly #stats: PubSubStats = {
    published: 0,
    received: 0,
    delivered: 0,
    shared: 0,
    skipped: 0,
    closed: 0,
    failed: 0,
  };

  /**
   * Makes an empty set of topics.
   *
   * @param options The default slow-subscriber policy, `onDrop`, and a
   * broker to share topics with other processes.
   * @throws {TypeError} for an unknown `slow` policy.
   * @throws {RangeError} for a negative or fractional `maxBufferedAmount`.
   */
  constructor(options: PubSubOptions = {}) {
    checkPolicy(options, "PubSub");
    this.#default = {
      slow: options.slow ?? "wait",
      maxBufferedAmount: options.maxBufferedAmount ?? DEFAULT_MAX_BUFFERED,
    };
    this.#onDrop = options.onDrop;
    this.#broker = options.broker ?? null;
    if (this.#broker !== null) {
      const started = this.#broker.start((topic, message) => {
        this.#stats.received++;
        // Nobody awaits these: a listener's error is logged, not lost.
        this.#fanOut(topic, message).catch((error) =>
          console.error("PubSub: a listener threw", error)
        );
      });
      if (started instanceof Promise) started.catch(() => {});
    }
  }

  /** The counters (a snapshot). */
  get stats(): PubSubStats {
    return { ...this.#stats };
  }

  /**
   * Sets how the topics matching `pattern` treat slow subscribers; the
   * policy set last among those that match a topic applies, else the
   * default given to the constructor.
   *
   * @param pattern A topic or glob.
   * @param policy The policy.
   * @throws {TypeError} for an unknown `slow` policy or a pattern that is not a string.
   * @throws {RangeError} for an empty pattern or a bad `maxBufferedAmount`.
   *
   * @example
   * ```ts
   * import { PubSub } from "@wsstream/wsstream";
   * const topics = new PubSub();
   * topics.setPolicy("prices/*", { slow: "skip" });
   * topics.setPolicy("orders/*", { slow: "close", maxBufferedAmount: 64 * 1024 });
   * ```
   */
  setPolicy(pattern: string, policy: TopicPolicy): void {
    checkTopic(pattern, "pattern");
    checkPolicy(policy, `setPolicy("${pattern}")`);
    this.#policies.delete(pattern);
    this.#policies.set(pattern, {
      slow: policy.slow ?? this.#default.slow,
      maxBufferedAmount: policy.maxBufferedAmount ??
        this.#default.maxBufferedAmount,
    });
  }

  /**
   * Subscribes a connection to a topic, or to every topic a glob matches
   * (`*`: any run of characters but `/`; `**`: any run; `?`: one character
   * but `/`). Subscribing twice is subscribing once; a connection gets each
   * message once even when several of its patterns match. It is
   * unsubscribed from everything when it closes.
   *
   * @param connection The subscriber.
   * @param pattern A topic or glob.
   * @throws {TypeError} if `connection` is not a connection or `pattern` not a string.
   * @throws {RangeError} for an empty pattern.
   *
   * @example
   * ```ts
   * import { PubSub, type WebSocketConnection } from "@wsstream/wsstream";
   * const topics = new PubSub();
   * function join(connection: WebSocketConnection, room: string) {
   *   topics.subscribe(connection, `rooms/${room}`);
   * }
   * ```
   */
  subscribe(connection: WebSocketConnection, pattern: string): void {
    if (
      typeof connection !== "object" || connection === null ||
      typeof (connection as WebSocketConnection).send !== "function"
    ) {
      throw new TypeError(
        "Cannot subscribe: expected a WebSocketConnection (use listen() for a function)",
      );
    }
    checkTopic(pattern, "pattern");
    if (connection.state !== "open") return;
    if (this.#add(connection, pattern)) {
      connection.closed.then(() => this.unsubscribe(connection));
    }
  }

  /**
   * Calls `listener` with every message published to a topic `pattern`
   * matches, here or (with a broker) in another process: the server's own
   * view of a topic (a room's history, say).
   *
   * @param pattern A topic or glob.
   * @param listener Called with the topic and the message.
   * @returns A function that stops listening.
   * @throws {TypeError} if `listener` is not a function.
   *
   * @example
   * ```ts
   * import { PubSub } from "@wsstream/wsstream";
   * import assert from "node:assert/strict";
   * const topics = new PubSub();
   * const seen: string[] = [];
   * const stop = topics.listen("rooms/*", (topic) => seen.push(topic));
   * await topics.publish("rooms/lobby", "hi");
   * stop();
   * await topics.publish("rooms/lobby", "again");
   * assert.deepEqual(seen, ["rooms/lobby"]);
   * ```
   */
  listen(pattern: string, listener: TopicListener): () => void {
    checkTopic(pattern, "pattern");
    if (typeof listener !== "function") {
      throw new TypeError("Cannot listen: the listener is not a function");
    }
    this.#add(listener, pattern);
    return () => this.#remove(listener, pattern);
  }

  /**
   * Unsubscribes a connection from one topic or glob (as it was given to
   * `subscribe`), or from all of them.
   *
   * @param connection The subscriber.
   * @param pattern The topic or glob; all of them when left out.
   */
  unsubscribe(connection: WebSocketConnection, pattern?: string): void {
    if (pattern !== undefined) return this.#remove(connection, pattern);
    const mine = this.#subscriptions.get(connection);
    if (mine === undefined) return;
    for (const each of [...mine]) this.#remove(connection, each);
  }

  /**
   * The number of subscribers (connections and listeners) a message
   * published to `topic` would reach in this process.
   *
   * @param topic The topic.
   * @returns How many.
   */
  subscriberCount(topic: string): number {
    checkTopic(topic, "topic");
    return this.#subscribersOf(topic).size;
  }

  /**
   * Publishes a message to every subscriber of `topic` here and, with a
   * broker, in the other processes. The message is framed once for every
   * local subscriber that can take shared bytes.
   *
   * @param topic The topic (not a glob: `*` in it is just a character).
   * @param message Text as a string, binary as bytes.
   * @returns Resolves once every local subscriber's send path has taken it,
   * including, under the `wait` policy, a slow one's transport draining.
   * It never rejects for a connection's failure (those are counted in
   * `stats.failed`); it rejects with a listener's error, once every other
   * subscriber has the message.
   * @throws {TypeError} for a message that is not a string or bytes.
   * @throws {RangeError} for an empty topic.
   *
   * @example
   * ```ts
   * import { PubSub } from "@wsstream/wsstream";
   * import assert from "node:assert/strict";
   * const topics = new PubSub();
   * await topics.publish("nobody/listens", "hello");
   * assert.equal(topics.stats.published, 1);
   * ```
   */
  publish(topic: string, message: Message): Promise<void> {
    checkTopic(topic, "topic");
    if (typeof message !== "string" && !(message instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot publish ${typeof message}: expected a string or Uint8Array`,
      );
    }
    this.#stats.published++;
    this.#broker?.publish(topic, message);
    return this.#fanOut(topic, message);
  }

  /** Stops the broker, if any; subscriptions stay. */
  async close(): Promise<void> {
    await this.#broker?.close();
  }

  #add(subscriber: Subscriber, pattern: string): boolean {
    let subscribers: Set<Subscriber>;
    if (GLOB_CHARS.test(pattern)) {
      let entry = this.#patterns.get(pattern);
      if (entry === undefined) {
        entry = { regexp: globRegExp(pattern), subscribers: new Set() };
        this.#patterns.set(pattern, entry);
      }
      subscribers = entry.subscribers;
    } else {
      let set = this.#exact.get(pattern);
      if (set === undefined) this.#exact.set(pattern, set = new Set());
      subscribers = set;
    }
    subscribers.add(subscriber);
    let mine = this.#subscriptions.get(subscriber);
    const first = mine === undefined;
    if (mine === undefined) {
      this.#subscriptions.set(subscriber, mine = new Set());
    }
    mine.add(pattern);
    return first;
  }

  #remove(subscriber: Subscriber, pattern: string): void {
    const mine = this.#subscriptions.get(subscriber);
    if (mine === undefined || !mine.delete(pattern)) return;
    if (mine.size === 0) this.#subscriptions.delete(subscriber);
    const entry = this.#patterns.get(pattern);
    const set = entry?.subscribers ?? this.#exact.get(pattern);
    if (set === undefined) return;
    set.delete(subscriber);
    if (set.size > 0) return;
    if (entry !== undefined) this.#patterns.delete(pattern);
    else this.#exact.delete(pattern);
  }

  #subscribersOf(topic: string): Set<Subscriber> {
    const exact = this.#exact.get(topic);
    if (this.#patterns.size === 0) return exact ?? new Set();
    // A subscriber of several matching patterns is in the set once.
    const all = new Set<Subscriber>(exact);
    for (const { regexp, subscribers } of this.#patterns.values()) {
      if (regexp.test(topic)) { for (const each of subscribers) all.add(each); }
    }
    return all;
  }

  #policyOf(topic: string): Required<TopicPolicy> {
    let policy = this.#default;
    for (const [pattern, each] of this.#policies) {
      if (
        GLOB_CHARS.test(pattern)
          ? globRegExp(pattern).test(topic)
          : pattern === topic
      ) policy = each;
    }
    return policy;
  }

  #fanOut(topic: string, message: Message): Promise<void> {
    const subscribers = this.#subscribersOf(topic);
    if (subscribers.size === 0) return Promise.resolve();
    const policy = this.#policyOf(topic);
    const stats = this.#stats;
    let frame: Uint8Array | null = null;
    let waits: Promise<void>[] | null = null;
    const failed = () => {
      stats.failed++;
    };
    let thrown: { error: unknown } | null = null;
    for (const subscriber of subscribers) {
      if (typeof subscriber === "function") {
        stats.delivered++;
        try {
          subscriber(topic, message);
        } catch (error) {
          // The other subscribers still get it; publish then rejects.
          thrown ??= { error };
        }
        continue;
      }
      if (subscriber.state !== "open") continue;
      const pending = pendingBytes(subscriber);
      if (pending > policy.maxBufferedAmount && policy.slow !== "wait") {
        this.#drop(topic, subscriber, policy.slow, pending);
        continue;
      }
      // Framed once, on the first subscriber that needs the frame.
      frame ??= encodeFrame({
        fin: true,
        rsv: 0,
        opcode: typeof message === "string" ? Opcode.Text : Opcode.Binary,
        payload: typeof message === "string"
          ? encoder.encode(message)
          : message,
      });
      let sent = sendEncoded(subscriber, frame);
      if (sent === null) sent = subscriber.send(message);
      else stats.shared++;
      stats.delivered++;
      (waits ??= []).push(sent.catch(failed));
    }
    if (thrown !== null) return Promise.reject(thrown.error);
    return waits === null ? Promise.resolve() : Promise.all(waits).then(
      () => {},
    );
  }

  #drop(
    topic: string,
    connection: WebSocketConnection,
    action: "skip" | "close",
    pending: number,
  ): void {
    if (action === "skip") this.#stats.skipped++;
    else {
      this.#stats.closed++;
      this.unsubscribe(connection);
      void connection.close({ closeCode: 1013 });
    }
    this.#onDrop?.({
      topic,
      connection,
      action: action === "skip" ? "skipped" : "closed",
      pendingBytes: pending,
    });
  }
}
