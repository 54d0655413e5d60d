/**
 * Deadlines of one fixed length, kept by a single timer: the server's
 * opening-handshake deadline, and (one queue per length) the connections'
 * keepalive and close deadlines. Private: not re-exported by `mod.ts`.
 *
 * @module
 */

/**
 * Deadlines that all run for the same time, so they expire in the order
 * they were set. One timer serves them all, armed for the oldest; setting or
 * removing a deadline costs a `Map` operation, not a timer of its own
 * (a timer per connection is a measurable share of a server's handshake).
 */
export class DeadlineQueue<T> {
  readonly #duration: number;
  readonly #onExpired: (key: T) => void;
  /** Each key's expiry (`performance.now()` ms); insertion order is expiry order. */
  readonly #expiries = new Map<T, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param duration How long each deadline runs, in ms.
   * @param onExpired Called with a key whose deadline passed; the key is
   * removed first.
   */
  constructor(duration: number, onExpired: (key: T) => void) {
    this.#duration = duration;
    this.#onExpired = onExpired;
  }

  /** Starts `key`'s deadline, `duration` ms from now. */
  add(key: T): void {
    // Deleted first: set() would leave a key already there in its old place.
    this.#expiries.delete(key);
    this.#expiries.set(key, performance.now() + this.#duration);
    // An armed timer fires no later than this deadline: it is for an
    // older one, or for one removed since (it then re-arms).
    this.#timer ??= setTimeout(this.#expire, this.#duration);
  }

  /** Whether `key`'s deadline is running (set, not passed, not removed). */
  has(key: T): boolean {
    return this.#expiries.has(key);
  }

  /**
   * Stops `key`'s deadline; returns whether it was running. The last one
   * stopped stops the timer too: a timer left armed would keep the process
   * alive for up to `duration` (30 s for keepalive) after its last deadline.
   */
  delete(key: T): boolean {
    const deleted = this.#expiries.delete(key);
    if (deleted && this.#expiries.size === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    return deleted;
  }

  /** Stops every deadline and the timer. */
  clear(): void {
    this.#expiries.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    for (const [key, expiry] of this.#expiries) {
      if (expiry > now) {
        this.#timer = setTimeout(this.#expire, Math.ceil(expiry - now));
        return;
      }
      this.#expiries.delete(key);
      this.#onExpired(key);
    }
  };
}

/**
 * Deadline queues of any length with one action, each made when a deadline
 * of its length is first set: the connections' keepalive and close
 * deadlines, whose lengths are options (most programs use one or two).
 */
export class DeadlineQueues<T> {
  readonly #queues = new Map<number, DeadlineQueue<T>>();
  readonly #onExpired: (key: T) => void;

  /** @param onExpired Called with a key whose deadline passed. */
  constructor(onExpired: (key: T) => void) {
    this.#onExpired = onExpired;
  }

  /** Starts `key`'s deadline, `duration` ms from now. */
  add(duration: number, key: T): void {
    let queue = this.#queues.get(duration);
    if (queue === undefined) {
      queue = new DeadlineQueue(duration, this.#onExpired);
      this.#queues.set(duration, queue);
    }
    queue.add(key);
  }

  /** Stops `key`'s deadline of `duration`; returns whether it was running. */
  delete(duration: number, key: T): boolean {
    return this.#queues.get(duration)?.delete(key) ?? false;
  }
}
