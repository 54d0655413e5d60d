// @ts-check
/**
 * What every client program shares: `conns` connections to the echo server,
 * each keeping `inflight` binary messages of `size` bytes on the wire (an
 * echo sends the next one), latency from a FIFO of send times, one result
 * line. Each program only says how to open its client. Plain JavaScript so
 * that Node runs it too (the `ws` client).
 *
 * @module
 */
import process from "node:process";
import {
  CpuMeter,
  fail,
  LatencyHistogram,
  MeasureWindow,
  printResult,
  randomPayload,
  readOptions,
  TimestampRing,
} from "../_stats.mjs";

/**
 * An open client connection, as the driver uses it.
 * @typedef {object} EchoSocket
 * @property {(bytes: Uint8Array) => unknown} send sends one binary message
 * (may return a promise: it is awaited only where the client's own loop awaits it)
 * @property {() => Promise<void>} close closes and waits for the end
 */

/**
 * Opens one connection to `url`; `onMessage` gets each binary message
 * received (as bytes; a text message must fail the run) and returns what
 * sending the next one returned.
 * @callback OpenClient
 * @param {string} url
 * @param {(bytes: Uint8Array) => unknown} onMessage
 * @returns {Promise<EchoSocket>}
 */

/**
 * Runs the echo load over the client `open` makes, with the options on the
 * command line (`--port`, `--conns`, `--inflight`, `--size`, `--warmup`,
 * `--seconds`, `--pid` of the server), and prints the result.
 * @param {string} client the client's name, for the result
 * @param {OpenClient} open
 * @returns {Promise<never>}
 */
export async function runEchoClient(client, open) {
  const options = readOptions({
    host: "127.0.0.1",
    port: 0,
    conns: 1,
    inflight: 64,
    size: 32,
    warmup: 1,
    seconds: 3,
    pid: 0,
  });
  if (!(options.port > 0)) fail("--port is required");
  const url = `ws://${options.host}:${options.port}/`;
  const payload = randomPayload(options.size);
  const window = new MeasureWindow(options.warmup, options.seconds);
  const histogram = new LatencyHistogram();
  let messages = 0;
  let outstanding = 0;

  /** @param {Uint8Array} bytes */
  const verify = (bytes) => {
    for (let i = 0; i < payload.length; i++) {
      if (bytes[i] !== payload[i]) fail(`The echo differs at byte ${i}`);
    }
  };

  const connections = await Promise.all(
    Array.from({ length: options.conns }, async () => {
      const ring = new TimestampRing(options.inflight);
      let first = true;
      /** @type {{ socket?: EchoSocket }} */
      const opened = {};
      /** @param {Uint8Array} bytes */
      const onMessage = (bytes) => {
        if (bytes.byteLength !== options.size) {
          fail(
            `An echo of ${bytes.byteLength} bytes; ${options.size} were sent`,
          );
        }
        if (first) {
          verify(bytes);
          first = false;
        }
        const now = performance.now();
        const sent = ring.shift();
        outstanding--;
        if (window.measuring) {
          messages++;
          histogram.record(now - sent);
        }
        if (!window.running || opened.socket === undefined) return undefined;
        ring.push(now);
        outstanding++;
        return opened.socket.send(payload);
      };
      const socket = opened.socket = await open(url, onMessage);
      return { socket, ring };
    }),
  );

  const start = performance.now();
  for (const { socket, ring } of connections) {
    for (let i = 0; i < options.inflight; i++) {
      ring.push(start);
      outstanding++;
      const sending = socket.send(payload);
      if (sending instanceof Promise) {
        sending.catch((error) => fail(`send failed: ${error}`));
      }
    }
  }
  const cpu = new CpuMeter(options.pid);
  await window.run(() => {
    messages = 0;
    histogram.counts.fill(0);
    histogram.total = 0;
    cpu.reset();
  });
  const seconds = window.elapsed();
  const cores = cpu.cores();
  const deadline = performance.now() + 20_000;
  while (outstanding > 0) {
    if (performance.now() > deadline) {
      fail(`${outstanding} messages never came back`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await Promise.race([
    Promise.all(connections.map(({ socket }) => socket.close())),
    new Promise((resolve) => setTimeout(resolve, 3_000)),
  ]);
  printResult({
    mode: "echo",
    client,
    conns: options.conns,
    inflight: options.inflight,
    size: options.size,
    seconds,
    messages,
    msgPerSec: messages / seconds,
    mbPerSec: (messages * options.size) / seconds / 1e6,
    p50Ms: histogram.percentile(50),
    p99Ms: histogram.percentile(99),
    ...cores,
  });
  process.exit(0);
}
