/**
 * A property made from a source when first read, and from then on (or once
 * assigned) a plain data property: how a request's `headers` and
 * `remoteAddr` cost nothing until someone reads them. Private: not
 * re-exported by `mod.ts`.
 *
 * @module
 */

/**
 * One lazy property, by name, for any number of objects. The getter and
 * setter are shared by every object (not made per object), and the source
 * is kept beside the object, in a `WeakMap`, until the property is read or
 * assigned.
 *
 * @example
 * ```ts
 * import { LazyProperty } from "./_lazy_property.ts";
 * import assert from "node:assert/strict";
 *
 * let made = 0;
 * const doubled = new LazyProperty<number, number>("doubled", (n) => {
 *   made++;
 *   return n * 2;
 * });
 * const target = doubled.attach({}, 21) as { doubled: number };
 * assert.equal(made, 0);
 * assert.equal(target.doubled, 42);
 * assert.equal(target.doubled, 42);
 * assert.equal(made, 1);
 * ```
 */
export class LazyProperty<S, V> {
  readonly #name: string;
  readonly #sources = new WeakMap<object, S>();
  readonly #descriptor: PropertyDescriptor;

  /**
   * @param name The property's name.
   * @param make Makes its value from the source, when first read.
   */
  constructor(name: string, make: (source: S) => V) {
    this.#name = name;
    const sources = this.#sources;
    const settle = (target: object, value: unknown) => {
      sources.delete(target);
      Object.defineProperty(target, name, {
        value,
        writable: true,
        enumerable: true,
        configurable: true,
      });
    };
    this.#descriptor = {
      get(this: object): V {
        const value = make(sources.get(this)!);
        settle(this, value);
        return value;
      },
      set(this: object, value: unknown): void {
        settle(this, value);
      },
      enumerable: true,
      configurable: true,
    };
  }

  /**
   * Gives `target` the property, made from `source` when first read.
   *
   * @param target The object to give the property to.
   * @param source What its value is made from.
   * @returns `target`, with the property.
   */
  attach<T extends object>(target: T, source: S): T {
    this.#sources.set(target, source);
    Object.defineProperty(target, this.#name, this.#descriptor);
    return target;
  }

  /**
   * The source behind `target`'s property while it is still unread.
   *
   * @param target Any object.
   * @returns The source, or `undefined`.
   */
  sourceOf(target: object): S | undefined {
    return this.#sources.get(target);
  }
}
