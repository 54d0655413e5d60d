/**
 * Drives the Autobahn testsuite's fuzzing server (`wstest -m fuzzingserver`)
 * with wsstream's `connect()`: asks for the number of cases, runs each one by
 * echoing every message back (text as text, binary as binary) until the
 * server closes, then asks the server to write its reports.
 *
 *     deno run -A examples/autobahn_client.ts
 *     bun run examples/autobahn_client.ts
 *
 * Environment: `URL` (default `ws://127.0.0.1:9001`) and `AGENT` (default
 * `wsstream`, the name the reports file the results under). Every case's
 * connection offers permessage-deflate, as `connect()` does by default
 * (categories 12 and 13 need it); `DEFLATE=0` offers nothing.
 *
 * Prints one line per case: `case N/COUNT: CODE REASON`, with the close code
 * the case ended with (1006 when the connection dropped, 0 when it never
 * opened). The fuzzer sends broken frames on purpose, so a case that ends in
 * an error is reported and the run goes on; only failing to reach the
 * server at all stops it (exit 1).
 *
 * @module
 */
import {
  connect,
  type ConnectOptions,
  type WebSocketConnection,
} from "../mod.ts";

// Works on both: Deno 2 has a Node-compatible `process` global too.
const env = globalThis.process?.env ?? {};
const base = (env.URL || "ws://127.0.0.1:9001").replace(/\/+$/, "");
const agent = env.AGENT || "wsstream";

const options: ConnectOptions = {
  // Autobahn's largest cases send 16 MiB messages; leave room above them.
  maxMessageSize: 64 * 1024 * 1024,
  // connect()'s default offer is permessage-deflate; [] offers nothing.
  ...(env.DEFLATE === "0" ? { extensions: [] } : {}),
};

/** Reads every message to the end, giving each to `onMessage`. */
async function drain(
  connection: WebSocketConnection,
  onMessage: (message: string | Uint8Array) => Promise<void> | void,
): Promise<{ closeCode: number; reason: string }> {
  try {
    for await (const message of connection.readable) await onMessage(message);
  } catch {
    // A protocol error (the connection has sent its close frame) or a send
    // on a connection the server is closing: either way the case is over.
  }
  return await connection.closed;
}

const counter = await connect(`${base}/getCaseCount`, options);
let count = NaN;
await drain(counter, (message) => {
  if (Number.isNaN(count)) count = Number(message);
});
if (!Number.isInteger(count) || count < 0) {
  throw new Error(`The fuzzing server sent no case count (got ${count})`);
}
console.log(`${count} cases, agent ${agent}`);

const query = (params: Record<string, string>) =>
  new URLSearchParams(params).toString();

for (let n = 1; n <= count; n++) {
  let outcome: { closeCode: number; reason: string };
  try {
    const connection = await connect(
      `${base}/runCase?${query({ case: String(n), agent })}`,
      options,
    );
    outcome = await drain(connection, (message) => connection.send(message));
  } catch (error) {
    outcome = {
      closeCode: 0,
      reason: error instanceof Error ? error.message : String(error),
    };
  }
  console.log(
    `case ${n}/${count}: ${outcome.closeCode} ${outcome.reason}`.trim(),
  );
}

const reports = await connect(
  `${base}/updateReports?${query({ agent })}`,
  options,
);
await drain(reports, () => {});
console.log(`reports updated for ${agent}`);
