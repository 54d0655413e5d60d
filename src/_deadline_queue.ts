/**
 * Deadlines of one fixed length, kept by a single timer: the server's
 * opening-handshake deadline, and (one queue per length) the connections'
 * keepalive and close deadlines. Private: not re-exported by `mod.ts`.
 *
 * @module
 */
import { Link, LinkedList } from "./_linked_list.ts";

/**
 * One running deadline: what it is for (`key`) and when it expires. Stop it
 * with `unlink()`, which returns whether it was still running.
 */
export class Deadline<T> extends Link {
  /**
   * @param key What the queue's `onExpired` is called with.
   * @param expiry When it expires (`performance.now()` ms).
   */
  constructor(readonly key: T, readonly expiry: number) {
    super();
  }
}

/**
 * Deadlines that all run for the same time, so they expire in the order
 * they were set. One timer serves them all, armed for the oldest; setting or
 * stopping a deadline is a few pointer writes, not a timer of its own (a
 * timer per connection is a measurable share of a server's handshake), and
 * not a `Map` operation either (see `_linked_list.ts` for why).
 */
export class DeadlineQueue<T> {
  readonly #duration: number;
  readonly #onExpired: (key: T) => void;
  /** Oldest first, which is expiry order. */
  readonly #deadlines = new LinkedList<Deadline<T>>(() => this.#stopTimer());
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param duration How long each deadline runs, in ms.
   * @param onExpired Called with the key of a deadline that passed; the
   * deadline is stopped first.
   */
  constructor(duration: number, onExpired: (key: T) => void) {
    this.#duration = duration;
    this.#onExpired = onExpired;
  }

  /** Starts a deadline for `key`, `duration` ms from now. */
  add(key: T): Deadline<T> {
    const deadline = this.#deadlines.append(
      new Deadline(key, performance.now() + this.#duration),
    );
    // An armed timer fires no later than this deadline: it is for an
    // older one, or for one stopped since (it then re-arms).
    this.#timer ??= setTimeout(this.#expire, this.#duration);
    return deadline;
  }

  /** How many deadlines are running. */
  get size(): number {
    return this.#deadlines.size;
  }

  /** Stops every deadline and the timer. */
  clear(): void {
    this.#deadlines.clear();
    this.#stopTimer();
  }

  // The last deadline stopped stops the timer too: a timer left armed would
  // keep the process alive for up to `duration` (30 s for keepalive) after
  // its last deadline.
  #stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    for (
      let deadline = this.#deadlines.first;
      deadline !== null;
      deadline = this.#deadlines.first
    ) {
      if (deadline.expiry > now) {
        // onExpired may have set one since, for a later deadline.
        clearTimeout(this.#timer);
        this.#timer = setTimeout(
          this.#expire,
          Math.ceil(deadline.expiry - now),
        );
        return;
      }
      deadline.unlink();
      this.#onExpired(deadline.key);
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

  /** @param onExpired Called with the key of a deadline that passed. */
  constructor(onExpired: (key: T) => void) {
    this.#onExpired = onExpired;
  }

  /** Starts a deadline for `key`, `duration` ms from now. */
  add(duration: number, key: T): Deadline<T> {
    let queue = this.#queues.get(duration);
    if (queue === undefined) {
      queue = new DeadlineQueue(duration, this.#onExpired);
      this.#queues.set(duration, queue);
    }
    return queue.add(key);
  }
}
