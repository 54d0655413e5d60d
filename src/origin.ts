/**
 * `originAllowed` and `OriginPolicy`: checking a handshake's `Origin`
 * against an allow-list of globs, as `serve`'s `origins` option does.
 *
 * Why: a browser sends a page's cookies and HTTP credentials with every
 * WebSocket handshake, whichever site the page comes from, and the
 * same-origin policy does not apply to WebSockets. Without a check, any
 * site a logged-in user visits can open a WebSocket to your server as that
 * user and read the replies: cross-site WebSocket hijacking. What tells
 * the server where the page came from is the `Origin` header, which a
 * browser always sends and a page cannot forge (RFC 6455 §10.2: "servers
 * that are not intended to process input from any web page but only for
 * certain sites SHOULD verify the |Origin| field is an origin they
 * expect"). A client that is not a browser may send any `Origin` or none,
 * so the check protects browser users, not the server against all clients.
 *
 * @module
 */

import { Glob } from "./glob.ts";

/**
 * A compiled allow-list of origins. A request is allowed when it has no
 * `Origin` (it is not from a browser), when its origin is the server's own
 * (the origin's `host[:port]` equals the request's `Host`, compared without
 * case), or when a glob matches. A glob with `://` matches the whole origin
 * (`https://*.example.com`); one without matches its `host[:port]`
 * (`*.example.com`, `localhost:*`), as coder/websocket's `OriginPatterns`
 * do; both without case. An origin that is not a URL (browsers send
 * `null` for sandboxed pages and `file:` URLs) is matched whole, so only a
 * glob such as `null` or `*` allows it. An empty list allows the same
 * origin only.
 *
 * @example
 * ```ts
 * import { OriginPolicy } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const policy = new OriginPolicy(["*.example.com", "http://localhost:*"]);
 * assert.ok(policy.allows("https://app.example.com", "api.example.org"));
 * assert.ok(policy.allows("http://localhost:5173", "127.0.0.1:9001"));
 * assert.ok(!policy.allows("https://evil.test", "api.example.org"));
 * assert.ok(policy.allows("https://api.example.org", "API.example.org")); // same origin
 * assert.ok(policy.allows(null, "api.example.org")); // not a browser
 * assert.ok(!policy.allows("null", "api.example.org"));
 * ```
 */
export class OriginPolicy {
  readonly #whole: Glob[] = [];
  readonly #hosts: Glob[] = [];

  /**
   * Compiles `origins`.
   *
   * @param origins Globs of the origins to allow besides the server's own.
   * @throws {TypeError} If `origins` is not an array of strings.
   */
  constructor(origins: readonly string[]) {
    if (!Array.isArray(origins)) {
      throw new TypeError(
        'origins must be an array of glob strings, such as ["*.example.com"]',
      );
    }
    for (const pattern of origins) {
      if (typeof pattern !== "string") {
        throw new TypeError(
          `origins must hold glob strings, got ${typeof pattern}`,
        );
      }
      const glob = new Glob(pattern, { ignoreCase: true });
      (pattern.includes("://") ? this.#whole : this.#hosts).push(glob);
    }
  }

  /**
   * Whether a handshake with this `Origin` and `Host` may go on.
   *
   * @param origin The request's `Origin` (`null` when absent).
   * @param host The request's `Host` (`null` when absent).
   * @returns `true` when it may.
   */
  allows(origin: string | null, host: string | null): boolean {
    if (origin === null) return true;
    let originHost: string | null = null;
    try {
      const url = new URL(origin);
      if (url.host !== "") originHost = url.host;
    } catch {
      // Not a URL ("null"): only the whole-origin globs can match it.
    }
    if (originHost === null) {
      return this.#whole.some((glob) => glob.test(origin)) ||
        this.#hosts.some((glob) => glob.test(origin));
    }
    // URL's host drops a default port and lower-cases; do the same to Host.
    if (host !== null && sameHost(originHost, origin, host)) return true;
    return this.#whole.some((glob) => glob.test(origin)) ||
      this.#hosts.some((glob) => glob.test(originHost));
  }
}

/** Whether the origin's host is the request's `Host`, default ports aside. */
function sameHost(originHost: string, origin: string, host: string): boolean {
  let requestHost: string;
  try {
    const scheme = origin.slice(0, origin.indexOf(":"));
    requestHost = new URL(`${scheme}://${host}`).host;
  } catch {
    return false;
  }
  return requestHost === originHost;
}

/**
 * Whether a handshake's `Origin` is allowed by `origins` (see
 * {@link OriginPolicy} for the rules); for servers of your own, such as
 * `Deno.serve` or `Bun.serve` handlers. Compile an `OriginPolicy` once
 * instead when checking many requests.
 *
 * @param headers The request's headers.
 * @param origins Globs of the origins to allow besides the server's own.
 * @returns `true` when the handshake may go on.
 *
 * @example
 * ```ts
 * import { originAllowed } from "@wsstream/wsstream";
 * import assert from "node:assert/strict";
 *
 * const headers = new Headers({ host: "chat.example.com", origin: "https://evil.test" });
 * assert.equal(originAllowed(headers, ["https://*.example.com"]), false);
 * ```
 */
export function originAllowed(
  headers: Headers,
  origins: readonly string[],
): boolean {
  return new OriginPolicy(origins).allows(
    headers.get("origin"),
    headers.get("host"),
  );
}
