/**
 * Picks the transport of the running runtime, so the same import works
 * unchanged on Deno and Bun. Both transport modules touch their runtime only
 * inside functions, so importing both here is harmless.
 *
 * @module
 */
import type { RuntimeTransports } from "./transport.ts";
import { bunTransports } from "./transports/bun.ts";
import { denoTransports } from "./transports/deno.ts";

export type { RuntimeTransports } from "./transport.ts";

interface Globals {
  Bun?: unknown;
  Deno?: { version?: { deno?: unknown } };
  process?: { versions?: { node?: unknown } };
  navigator?: { userAgent?: unknown };
}

/**
 * The name of the running runtime, as far as wsstream cares.
 *
 * @returns `"bun"` on Bun, `"deno"` on Deno, `"unknown"` anywhere else.
 *
 * @example
 * ```ts
 * import { runtimeName } from "./runtime.ts";
 * const name: "deno" | "bun" | "unknown" = runtimeName();
 * ```
 */
export function runtimeName(): "deno" | "bun" | "unknown" {
  const g = globalThis as Globals;
  // Bun first: a Deno shim could be loaded there, while no Deno has a `Bun`.
  if (g.Bun !== undefined) return "bun";
  if (typeof g.Deno?.version?.deno === "string") return "deno";
  return "unknown";
}

/**
 * The transports of the running runtime.
 *
 * @returns `denoTransports` on Deno, `bunTransports` on Bun.
 * @throws {Error} On any other runtime (Node.js, a browser, …).
 *
 * @example
 * ```ts
 * import { currentRuntime } from "./runtime.ts";
 * async function open() {
 *   const transport = await currentRuntime().connect({
 *     hostname: "127.0.0.1",
 *     port: 9001,
 *   });
 *   transport.close();
 * }
 * ```
 */
export function currentRuntime(): RuntimeTransports {
  switch (runtimeName()) {
    case "bun":
      return bunTransports;
    case "deno":
      return denoTransports;
    default:
      throw new Error(
        `wsstream needs Deno or Bun; no transport for this runtime (${describeRuntime()}). Pass a transport with the \`transport\` option`,
      );
  }
}

function describeRuntime(): string {
  const g = globalThis as Globals;
  const node = g.process?.versions?.node;
  if (typeof node === "string") return `Node.js ${node}`;
  const agent = g.navigator?.userAgent;
  return typeof agent === "string" ? agent : "unknown runtime";
}
