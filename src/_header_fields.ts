/**
 * Header fields as the head parser reads them, and the `headers` property
 * that turns them into a `Headers` only when it is read. Private: not
 * re-exported by `mod.ts`.
 *
 * A `Headers` checks every name and value again as it is built and as it is
 * looked up, which costs more than the rest of parsing a handshake; a server
 * whose hooks never read `request.headers` never pays for one.
 *
 * @module
 */
import { LazyProperty } from "./_lazy_property.ts";

/** What the handshake looks up in a head's fields: `Headers` has it too. */
export interface FieldLookup {
  /** The field's values joined with `", "` (as `Headers.get`), or `null`. */
  get(name: string): string | null;
}

/**
 * Checked header fields, in order, looked up by lower-case name. The parser
 * has already refused what a `Headers` would refuse (names not tokens,
 * values with CR, LF or NUL, values with outer whitespace), so making one of
 * them cannot throw.
 */
export class HeaderFields implements FieldLookup {
  /** Lower-case names and their values, alternating, in order. */
  readonly #lines: string[] = [];
  #headers: Headers | null = null;

  /** Adds a field: `name` lower-case, `value` checked and trimmed. */
  append(name: string, value: string): void {
    this.#lines.push(name, value);
  }

  /** Whether a field is named `name` (lower-case). */
  has(name: string): boolean {
    const lines = this.#lines;
    for (let i = 0; i < lines.length; i += 2) {
      if (lines[i] === name) return true;
    }
    return false;
  }

  get(name: string): string | null {
    const lines = this.#lines;
    let value: string | null = null;
    for (let i = 0; i < lines.length; i += 2) {
      if (lines[i] === name) {
        value = value === null ? lines[i + 1]! : `${value}, ${lines[i + 1]}`;
      }
    }
    return value;
  }

  /** The fields as a `Headers`, made on the first call. */
  toHeaders(): Headers {
    if (this.#headers === null) {
      const headers = new Headers();
      const lines = this.#lines;
      for (let i = 0; i < lines.length; i += 2) {
        headers.append(lines[i]!, lines[i + 1]!);
      }
      this.#headers = headers;
    }
    return this.#headers;
  }
}

/** A head's or a request's `headers`, made from its fields when first read. */
const LAZY_HEADERS = new LazyProperty<HeaderFields, Headers>(
  "headers",
  (fields) => fields.toHeaders(),
);

/**
 * Gives `target` a `headers` property holding `fields` as a `Headers`, made
 * when it is first read. From then on (or once it is assigned) it is a
 * plain data property.
 *
 * @param target The object to give the property to.
 * @param fields The fields it stands for.
 * @returns `target`, with the property.
 */
export function withLazyHeaders<T extends object>(
  target: T,
  fields: HeaderFields,
): T & { headers: Headers } {
  return LAZY_HEADERS.attach(target, fields) as T & { headers: Headers };
}

/**
 * The fields to look up in an object with `headers`: the parser's own
 * while its `headers` is still unread, else the `Headers` itself (which the
 * caller may have changed).
 *
 * @param head A parsed head or a request made from one, or any object with
 * `headers`.
 * @returns Its fields.
 */
export function fieldsOf(head: { headers: Headers }): FieldLookup {
  return LAZY_HEADERS.sourceOf(head) ?? head.headers;
}

/**
 * The parser's fields behind `head`, while its `headers` is still unread.
 *
 * @param head Any object.
 * @returns The fields, or `undefined`.
 */
export function lazyFieldsOf(head: object): HeaderFields | undefined {
  return LAZY_HEADERS.sourceOf(head);
}
