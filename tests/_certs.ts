/**
 * The TLS test certificate and key from `tests/fixtures/` (see its README for
 * how they were made). `node:fs` because it reads files the same way on Deno
 * and Bun.
 *
 * @module
 */
import { readFileSync } from "node:fs";

/**
 * The self-signed certificate (PEM) for `localhost` and `127.0.0.1`; clients
 * trust it through `caCerts`.
 *
 * @example
 * ```ts
 * import { cert } from "./_certs.ts";
 * const tls = { caCerts: [cert], serverName: "localhost" };
 * ```
 */
export const cert: string = readFileSync(
  new URL("./fixtures/cert.pem", import.meta.url),
  "utf8",
);

/**
 * The private key (PEM) of {@linkcode cert}.
 *
 * @example
 * ```ts
 * import { cert, key } from "./_certs.ts";
 * const tls = { cert, key };
 * ```
 */
export const key: string = readFileSync(
  new URL("./fixtures/key.pem", import.meta.url),
  "utf8",
);
