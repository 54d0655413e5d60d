/**
 * The example programs, run for real as subprocesses of the runtime running
 * this suite:
 *
 * - `examples/echo_server.ts`, driven by our client;
 * - `examples/autobahn_client.ts`, against a mock of Autobahn's fuzzing
 *   server built with our `serve()`.
 *
 *     deno test -A tests/interop/
 *     bun test ./tests/interop/
 */
import assert from "node:assert/strict";
import { connect, serve, type WebSocketConnection } from "../../mod.ts";
import { type Defer, interopTest, RUNTIME, within } from "./_harness.ts";
import {
  assertSamePayload,
  chunksOf,
  FRAGMENTED,
  MESSAGES,
  type Payload,
} from "./_messages.ts";
import { messageReader } from "./_ours.ts";
import { runExample, type Subprocess, waitForExit } from "./_process.ts";

const MiB = 1024 * 1024;
/** The examples' `maxMessageSize`. */
const EXAMPLE_LIMIT = 64 * MiB;
/** A subprocess's start (the runtime loading and compiling the example). */
const START_TIMEOUT = 15_000;
/** How promptly a signalled or finished example must exit. */
const EXIT_TIMEOUT = 5_000;

/** Runs an example, killed (if need be) and waited for when the test ends. */
function start(
  defer: Defer,
  name: string,
  env: Record<string, string>,
): Subprocess {
  const child = runExample(name, env);
  defer(async () => {
    child.kill("SIGKILL");
    await child.exited;
  });
  return child;
}

/** Starts the echo server on a free port and returns it with its URL. */
async function startEchoServer(
  defer: Defer,
  env: Record<string, string> = {},
): Promise<{ child: Subprocess; url: string }> {
  const child = start(defer, "echo_server.ts", {
    HOSTNAME: "127.0.0.1",
    PORT: "0",
    ...env,
  });
  let line: string;
  try {
    line = await child.lines.next(
      START_TIMEOUT,
      "the echo server's first line",
    );
  } catch (error) {
    throw new Error(`The echo server did not start: ${child.stderr()}`, {
      cause: error,
    });
  }
  const match =
    /^wsstream echo server listening on (ws:\/\/127\.0\.0\.1:(\d+))$/
      .exec(line);
  assert.ok(match, `unexpected first line: ${JSON.stringify(line)}`);
  assert.notEqual(Number(match[2]), 0, "the real port, not 0");
  return { child, url: match[1]! };
}

const echo = `${RUNTIME}: examples/echo_server.ts`;

interopTest(
  `${echo}: echoes every kind of message and exits 0 on SIGTERM`,
  async (defer) => {
    const { child, url } = await startEchoServer(defer);
    const connection = await connect(url);
    defer(() => connection.close());
    const messages = messageReader(connection);
    for (const [name, message] of MESSAGES) {
      await connection.send(message);
      assertSamePayload(await messages.next(name), message, name);
    }
    for (const { name, chunks, type, whole } of FRAGMENTED) {
      await connection.send(chunksOf(chunks), type ? { type } : {});
      assertSamePayload(await messages.next(name), whole, name);
    }
    const rtt = await within(5_000, connection.ping(), "the pong");
    assert.ok(rtt >= 0);

    // Shutting down closes our connection with 1001 ("going away"), cleanly.
    child.kill("SIGTERM");
    await messages.end("the end of our readable");
    const info = await within(EXIT_TIMEOUT, connection.closed, "our closed");
    assert.equal(info.closeCode, 1001);
    assert.equal(info.wasClean, true);
    assert.deepEqual(await waitForExit(child, EXIT_TIMEOUT), {
      code: 0,
      signal: null,
    });
    // One line at start, nothing per message, no errors.
    assert.deepEqual(child.stdout, [
      `wsstream echo server listening on ${url}`,
    ]);
    assert.equal(child.stderr(), "");
  },
  40_000,
);

interopTest(
  `${echo}: with DEFLATE=1 agrees on permessage-deflate and echoes compressed`,
  async (defer) => {
    const { url } = await startEchoServer(defer, { DEFLATE: "1" });
    const connection = await connect(url);
    defer(() => connection.close());
    assert.deepEqual(connection.extensions.map((e) => e.name), [
      "permessage-deflate",
    ]);
    const messages = messageReader(connection);
    for (const [name, message] of MESSAGES) {
      await connection.send(message);
      assertSamePayload(await messages.next(name), message, name);
    }
    for (const { name, chunks, type, whole } of FRAGMENTED) {
      await connection.send(chunksOf(chunks), type ? { type } : {});
      assertSamePayload(await messages.next(name), whole, name);
    }
    // Without DEFLATE the same client is declined (the offer is default).
    const { url: plainUrl } = await startEchoServer(defer);
    const plain = await connect(plainUrl);
    defer(() => plain.close());
    assert.deepEqual(plain.extensions, []);
  },
  40_000,
);

interopTest(
  `${echo}: serves clients side by side and exits 0 on SIGINT`,
  async (defer) => {
    const { child, url } = await startEchoServer(defer);
    const clients = await Promise.all(
      [1, 2, 3].map(() => connect(`${url}/any/path?x=1`)),
    );
    for (const client of clients) defer(() => client.close());
    await Promise.all(clients.map(async (client, i) => {
      const messages = messageReader(client);
      for (let n = 0; n < 20; n++) {
        const text = `client ${i} message ${n}`;
        await client.send(text);
        assertSamePayload(await messages.next(text), text, text);
      }
      // The reason is the server's echo's: not asserted.
      const { closeCode, wasClean } = await client.close();
      assert.deepEqual({ closeCode, wasClean }, {
        closeCode: 1000,
        wasClean: true,
      });
    }));
    child.kill("SIGINT");
    assert.deepEqual(await waitForExit(child, EXIT_TIMEOUT), {
      code: 0,
      signal: null,
    });
    assert.equal(child.stderr(), "");
  },
  40_000,
);

// ---- the Autobahn client against a mock fuzzing server ----

/**
 * What the mock sends in each case; every message must come back. Case 2
 * ends with a message over the client's limit, which it must refuse (1009)
 * and go on: the stand-in for the fuzzer's deliberately broken cases.
 */
const CASES: Record<number, readonly (readonly [string, Payload])[]> = {
  1: MESSAGES,
  2: [["text", "case two"], ["binary", Uint8Array.of(2, 2)]],
  3: [["multi-byte UTF-8 text", "trois ✓ 🎉"], ["empty text", ""]],
};
const CASE_COUNT = Object.keys(CASES).length;
const OVERSIZED_CASE = 2;

interface CaseRun {
  agent: string | null;
  echoed: string[];
  fragmentsEchoed: number;
}

/** One case of the mock: send, expect each message back, then close. */
async function mockCase(
  connection: WebSocketConnection,
  n: number,
  run: CaseRun,
): Promise<void> {
  const messages = messageReader(connection);
  for (const [name, message] of CASES[n] ?? []) {
    await connection.send(message);
    assertSamePayload(await messages.next(name), message, name);
    run.echoed.push(name);
  }
  if (n === 1) {
    for (const { name, chunks, type, whole } of FRAGMENTED) {
      await connection.send(chunksOf(chunks), type ? { type } : {});
      assertSamePayload(await messages.next(name), whole, name);
      run.fragmentsEchoed++;
    }
  }
  if (n === OVERSIZED_CASE) {
    // The client fails the connection on this frame's header: the rest of
    // the frame never goes out, and this send fails with the connection.
    await connection.send(new Uint8Array(EXAMPLE_LIMIT + 1)).catch(() => {});
    await connection.closed;
  } else {
    await connection.close({ closeCode: 1000 });
  }
}

/**
 * A mock of `wstest -m fuzzingserver` on our `serve()`, routing by path and
 * query, recording what the client did.
 */
async function mockFuzzingServer(defer: Defer) {
  const runs = new Map<number, CaseRun>();
  const reports: (string | null)[] = [];
  const problems: string[] = [];
  const server = await serve({
    hostname: "127.0.0.1",
    port: 0,
    maxMessageSize: EXAMPLE_LIMIT,
    onError: (error) => problems.push(`handler failed: ${error}`),
  }, async (connection, request) => {
    const params = new URLSearchParams(request.query);
    try {
      switch (request.path) {
        case "/getCaseCount":
          await connection.send(String(CASE_COUNT));
          await connection.close();
          break;
        case "/runCase": {
          const n = Number(params.get("case"));
          const run: CaseRun = {
            agent: params.get("agent"),
            echoed: [],
            fragmentsEchoed: 0,
          };
          runs.set(n, run);
          await mockCase(connection, n, run);
          break;
        }
        case "/updateReports":
          reports.push(params.get("agent"));
          await connection.close();
          break;
        default:
          problems.push(`unexpected request ${request.target}`);
          await connection.close({ closeCode: 1008 });
      }
    } catch (error) {
      problems.push(`${request.target}: ${error}`);
      await connection.close({ closeCode: 1011 });
    }
  });
  defer(() => server.close());
  return { url: `ws://127.0.0.1:${server.addr.port}`, runs, reports, problems };
}

const autobahn = `${RUNTIME}: examples/autobahn_client.ts`;

interopTest(
  `${autobahn}: runs every case, echoes every message, updates the reports`,
  async (defer) => {
    const { url, runs, reports, problems } = await mockFuzzingServer(defer);
    const agent = "wsstream mock/1 ✓";

    const child = start(defer, "autobahn_client.ts", {
      URL: url,
      AGENT: agent,
    });
    const status = await waitForExit(child, 30_000);
    const output = `stdout:\n${
      child.stdout.join("\n")
    }\nstderr:\n${child.stderr()}`;
    assert.deepEqual(status, { code: 0, signal: null }, output);
    assert.deepEqual(problems, [], output);

    // Every case ran, under the agent's name, each message echoed back.
    assert.deepEqual([...runs.keys()].sort(), [1, 2, 3], output);
    for (const [n, run] of runs) {
      assert.equal(run.agent, agent, `case ${n}'s agent`);
      assert.deepEqual(
        run.echoed,
        CASES[n]!.map(([name]) => name),
        `case ${n}'s echoes`,
      );
    }
    assert.equal(runs.get(1)!.fragmentsEchoed, FRAGMENTED.length);
    assert.deepEqual(reports, [agent], "updateReports, once, with the agent");

    // One progress line per case, with how it ended: case 2 refused the
    // oversized message with 1009 and the run went on.
    assert.deepEqual(child.stdout, [
      `${CASE_COUNT} cases, agent ${agent}`,
      "case 1/3: 1000 Normal closure",
      `case 2/3: 1009 Message over the ${EXAMPLE_LIMIT}-byte limit`,
      "case 3/3: 1000 Normal closure",
      `reports updated for ${agent}`,
    ], output);
  },
  60_000,
);
