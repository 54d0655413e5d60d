/**
 * A doubly linked list whose entries leave it through themselves, in O(1):
 * the server's open connections and handshakes, and the deadline queues.
 * Private: not re-exported by `mod.ts`.
 *
 * Why not a `Set` or a `Map`: a server's sets gain and lose an entry per
 * connection for as long as it runs, and on V8 that churn keeps every
 * connection alive until the next full collection. Rehashing a `Map` or a
 * `Set` (every few additions, when deleted entries fill its table) leaves
 * the old table pointing at the new one, for iterators still walking it,
 * and still holding the keys it had. Once one such table is in the old
 * generation, a scavenge (the young generation's collection) takes the chain
 * for live: every later table, and every key ever added to it. On the
 * benchmark's handshake load that was about 2 KiB promoted per handshake and
 * scavenges of 8 to 12 ms, against under 1 ms without the chain.
 *
 * @module
 */

/**
 * A place in a {@link LinkedList}. Subclass it to say what the entry is: an
 * entry is its own link, so joining a list allocates nothing more.
 */
export class Link {
  /** The neighbours, while in a list; set to `null` when leaving it. */
  prev: Link | null = null;
  next: Link | null = null;
  /** The list this link is in, or `null`. */
  list: LinkedList<Link> | null = null;

  /** Leaves its list, if it is in one; returns whether it was. */
  unlink(): boolean {
    return this.list !== null && this.list.delete(this);
  }
}

/** Links in the order they were appended. */
export class LinkedList<L extends Link> implements Iterable<L> {
  #first: L | null = null;
  #last: L | null = null;
  #size = 0;
  readonly #onEmptied: (() => void) | undefined;
  /**
   * Iterations under way: where each one stands (see `[Symbol.iterator]`).
   * `null` while there are none, which is nearly always.
   */
  #cursors: Cursor[] | null = null;

  /** @param onEmptied Called each time the last link leaves. */
  constructor(onEmptied?: () => void) {
    this.#onEmptied = onEmptied;
  }

  /** How many links are in the list. */
  get size(): number {
    return this.#size;
  }

  /** The oldest link, or `null` when empty. */
  get first(): L | null {
    return this.#first;
  }

  /** Appends `link`, which must not be in a list; returns it. */
  append(link: L): L {
    if (link.list !== null) throw new Error("The link is in a list already");
    link.list = this as LinkedList<Link>;
    link.prev = this.#last;
    if (this.#last === null) this.#first = link;
    else this.#last.next = link;
    this.#last = link;
    this.#size++;
    return link;
  }

  /** Takes `link` out; returns whether it was in this list. */
  delete(link: L): boolean {
    if (link.list !== this) return false;
    const { prev, next } = link;
    // An iteration standing at this link goes on from the one before it,
    // so that it still visits every link after it (as a `Set` does).
    const cursors = this.#cursors;
    if (cursors !== null) {
      for (const cursor of cursors) if (cursor.at === link) cursor.at = prev;
    }
    if (prev === null) this.#first = next as L | null;
    else prev.next = next;
    if (next === null) this.#last = prev as L | null;
    else next.prev = prev;
    // Cleared, so that a link let go holds none of the others: dead but not
    // yet collected, it would keep them through the young generation's
    // collections.
    link.prev = link.next = null;
    link.list = null;
    if (--this.#size === 0) this.#onEmptied?.();
    return true;
  }

  /** Takes every link out (without calling `onEmptied`). */
  clear(): void {
    // Iterations under way end: there is nothing left to visit.
    if (this.#cursors !== null) {
      for (const cursor of this.#cursors) cursor.done = true;
    }
    for (let link = this.#first; link !== null;) {
      const next = link.next as L | null;
      link.prev = link.next = null;
      link.list = null;
      link = next;
    }
    this.#first = this.#last = null;
    this.#size = 0;
  }

  /**
   * The links, oldest first, with a `Set`'s semantics while the list
   * changes: a link taken out (the current one included) does not end the
   * iteration, links not yet visited are still visited, and links appended
   * meanwhile are visited too. An iteration left unfinished without
   * `return()` (a `for … of` loop calls it on `break`) stays registered
   * until the list is cleared.
   */
  *[Symbol.iterator](): Generator<L, void, undefined> {
    const cursor: Cursor = { at: null, done: false };
    (this.#cursors ??= []).push(cursor);
    try {
      for (;;) {
        const next = cursor.at === null ? this.#first : cursor.at.next;
        if (next === null || cursor.done) return;
        cursor.at = next;
        yield next as L;
      }
    } finally {
      const cursors = this.#cursors;
      if (cursors !== null) {
        cursors.splice(cursors.indexOf(cursor), 1);
        if (cursors.length === 0) this.#cursors = null;
      }
    }
  }
}

/**
 * Where one iteration of a {@link LinkedList} stands: the link it visited
 * last (`null`: none yet, or every link before the next one has left).
 */
interface Cursor {
  at: Link | null;
  done: boolean;
}
