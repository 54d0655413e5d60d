/**
 * Runs one conformance case against one twin of the implementation:
 *
 * - `server`: our `serve()` with an echo handler; the raw peer connects to
 *   it as a client.
 * - `client`: our `connect()` to the raw peer playing the server; the
 *   application echoes every message back.
 *
 * The same script runs in both. Every case is bounded in time, and closes
 * everything it opened whether it passed or not. After the script, the
 * harness checks the implementation's side too: its `closed` must resolve as
 * the script expected, and the application may only have seen wsstream's own
 * errors (a failed connection, a send after the close).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type CloseInfo,
  connect,
  serve,
  type WebSocketConnection,
  WebSocketError,
} from "../../mod.ts";
import type { ConformanceCase } from "./cases.ts";
import { HOST, Peer, PeerServer, WAIT } from "./_peer.ts";

/** Which side of the implementation is under test. */
export type Twin = "server" | "client";

/** Default bound for one case, in ms. */
export const CASE_TIMEOUT = 3_000;

/** The application under test: echo every message, in order. */
async function echo(connection: WebSocketConnection): Promise<void> {
  for await (const message of connection.readable) {
    await connection.send(message);
  }
}

/** Rejects after `ms` instead of waiting forever; clears its timer. */
export async function within<T>(
  ms: number,
  promise: Promise<T>,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: nothing after ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What did not close after its case, by name: checked after all cases. Bun has no
 * leak sanitizers (Deno's are on under `deno task test`), so the suite also
 * does its own accounting: everything a case opens is tracked until
 * it is seen closed.
 */
export const leaks: string[] = [];

/** Everything one case opened, closed in reverse order at its end. */
class Scope {
  readonly #cleanups: (() => unknown)[] = [];
  readonly #tracked: { name: string; done: Promise<unknown> }[] = [];
  peer: Peer | null = null;

  constructor(readonly id: string) {}

  defer(cleanup: () => unknown): void {
    this.#cleanups.push(cleanup);
  }

  /** Something that must have ended (settled) once the case is cleaned up. */
  track(name: string, done: Promise<unknown>): void {
    done.catch(() => {});
    this.#tracked.push({ name, done });
  }

  async close(): Promise<void> {
    // Each thing once, even when called again for what came late.
    for (const cleanup of this.#cleanups.splice(0).reverse()) {
      try {
        await within(WAIT, Promise.resolve(cleanup()), "cleanup");
      } catch {
        // Report the case's own failure, not a cleanup's.
      }
    }
    for (const { name, done } of this.#tracked.splice(0)) {
      try {
        await within(WAIT, done.then(() => {}, () => {}), name);
      } catch {
        leaks.push(`${this.id}: ${name} still open after the case`);
      }
    }
  }
}

const TRACE = (() => {
  const g = globalThis as {
    Deno?: { env: { get(name: string): string | undefined } };
    process?: { env: Record<string, string | undefined> };
  };
  try {
    return (g.Deno
      ? g.Deno.env.get("WSSTREAM_CONFORMANCE_TRACE")
      : g.process?.env["WSSTREAM_CONFORMANCE_TRACE"]) === "1";
  } catch {
    return false;
  }
})();

/**
 * Runs `testCase` against the `twin` of the implementation.
 *
 * @param twin `server` or `client`.
 * @param testCase The case.
 */
export async function runCase(
  twin: Twin,
  testCase: ConformanceCase,
): Promise<void> {
  const timeout = testCase.timeout ?? CASE_TIMEOUT;
  const scope = new Scope(`${twin} ${testCase.id}`);
  const work = twin === "server"
    ? againstServer(testCase, scope)
    : againstClient(testCase, scope);
  work.catch(() => {}); // raced below; never unhandled
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const transcript = scope.peer?.transcript.join("\n    ") ?? "";
          reject(
            new Error(
              `case ${testCase.id} did not finish within ${timeout} ms\n  transcript:\n    ${transcript}`,
            ),
          );
        }, timeout);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (TRACE && scope.peer) {
      console.log(
        `${twin} ${testCase.id}\n    ${scope.peer.transcript.join("\n    ")}`,
      );
    }
    await scope.close();
    // The script ends soon once its connection is gone; let it, so nothing
    // of this case outlives it, and close what it may have opened meanwhile.
    await within(WAIT, work, "script").catch(() => {});
    await scope.close();
  }
}

async function againstServer(
  testCase: ConformanceCase,
  scope: Scope,
): Promise<void> {
  const appErrors: unknown[] = [];
  const accepted = Promise.withResolvers<WebSocketConnection>();
  const server = await serve({
    hostname: HOST,
    port: 0,
    keepalive: false, // no pings of its own in the frame stream
    ...testCase.options,
    onError: (error) => appErrors.push(error),
  }, async (connection) => {
    accepted.resolve(connection);
    await echo(connection);
  });
  scope.defer(() => server.close());
  scope.track("the server", server.finished);
  const peer = await Peer.connect(server.addr.port);
  scope.peer = peer;
  scope.defer(() => peer.close());
  scope.track("the peer's connection", peer.finished);
  const connection = await within(WAIT, accepted.promise, "server handler");
  scope.track("the server's connection", connection.closed);
  await testCase.run(peer);
  await checkEnd(peer, connection, appErrors);
  // `closed` settles before the server forgets the connection.
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(
    server.connections.size,
    0,
    "the server still lists the connection",
  );
}

async function againstClient(
  testCase: ConformanceCase,
  scope: Scope,
): Promise<void> {
  const appErrors: unknown[] = [];
  const listener = await PeerServer.listen();
  scope.defer(() => listener.close());
  const connecting = connect(`ws://${HOST}:${listener.port}/`, {
    ...testCase.options,
  });
  connecting.catch(() => {}); // awaited below
  const peer = await within(WAIT, listener.accepted, "opening handshake");
  scope.peer = peer;
  scope.defer(() => peer.close());
  listener.close();
  const connection = await within(WAIT, connecting, "connect()");
  scope.defer(() => connection.close().catch(() => {}));
  scope.track("the client's connection", connection.closed);
  const app = echo(connection).catch((error) => appErrors.push(error));
  scope.track("the echo application", app);
  await testCase.run(peer);
  await checkEnd(peer, connection, appErrors);
  await within(WAIT, app, "the echo application");
}

/** The checks every case ends with, on the implementation's side. */
async function checkEnd(
  peer: Peer,
  connection: WebSocketConnection,
  appErrors: unknown[],
): Promise<void> {
  assert.ok(
    peer.ended,
    "the case script ended with the connection still open (every case must end it)",
  );
  const info: CloseInfo = await within(
    WAIT,
    connection.closed,
    `the ${peer.implRole}'s \`closed\``,
  );
  const expected = peer.expectedImplClose;
  if (expected !== null) {
    const got: Partial<CloseInfo> = {
      closeCode: info.closeCode,
      wasClean: info.wasClean,
    };
    if (expected.reason !== undefined) got.reason = info.reason;
    assert.deepEqual(
      got,
      expected,
      `the ${peer.implRole} reports the close as ${JSON.stringify(info)}`,
    );
  }
  assert.equal(connection.info.state, "closed");
  for (const error of appErrors) {
    if (!(error instanceof WebSocketError)) {
      assert.fail(`the echo application failed with ${String(error)}`);
    }
  }
}
