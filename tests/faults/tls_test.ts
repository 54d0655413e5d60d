/**
 * Garbage instead of a TLS handshake, both ways, over real sockets: a raw
 * client sending plaintext or stalling inside its ClientHello against
 * `serve()` with TLS, and `connect()` to `wss:` against a plain TCP server
 * that sends garbage or nothing.
 *
 *     deno test -A --import-map tests/_deno_import_map.json tests/faults/
 *     bun test ./tests/faults/
 *
 * One gap is the runtime's, flagged where it shows: Deno cannot close a TLS
 * connection whose handshake has not finished. `close()` waits for the
 * handshake to end (denoland/deno#14547), so on Deno the socket of a peer
 * that stalls mid-handshake stays open until that peer leaves, although
 * wsstream closes it at its deadline. Bun closes it at once.
 */
import assert from "node:assert/strict";
import { describe } from "node:test";
import { connect } from "../../src/client.ts";
import { TimeoutError, WebSocketError } from "../../src/errors.ts";
import { runtimeName } from "../../src/runtime.ts";
import { serve } from "../../src/server.ts";
import { cert, key } from "../_certs.ts";
import { within } from "../_wait.ts";
import {
  between,
  CLOSE_TIMEOUT,
  type Defer,
  elapsed,
  encoder,
  faultTest,
  HANDSHAKE_TIMEOUT,
  HOST,
  PROMPT,
  rawServer,
  rawTcp,
  readToEnd,
  settle,
  TransportLog,
} from "./_faults.ts";

/** Whether the runtime can close a TLS socket mid-handshake (see above). */
const CLOSES_MID_TLS_HANDSHAKE = runtimeName() !== "deno";

/** `serve()` over TLS with the short deadlines and recording transports. */
async function tlsServer(defer: Defer, handshakeTimeout = HANDSHAKE_TIMEOUT) {
  const log = new TransportLog();
  const errors: unknown[] = [];
  const server = await serve({
    hostname: HOST,
    port: 0,
    cert,
    key,
    handshakeTimeout,
    closeTimeout: CLOSE_TIMEOUT,
    keepalive: false,
    transport: log.runtime,
    onError: (error) => errors.push(error),
  }, async (connection) => {
    for await (const message of connection.readable) {
      await connection.send(message);
    }
  });
  defer(() => server.close());
  return { port: server.addr.port, log, errors };
}

/** A wss: client trusting the test certificate still gets its echo. */
async function stillServes(defer: Defer, port: number): Promise<void> {
  const client = await within(
    PROMPT,
    connect(`wss://${HOST}:${port}/`, { tls: { caCerts: [cert] } }),
  );
  defer(() => client.close());
  await client.send("still serving");
  const reader = client.readable.getReader();
  assert.equal((await within(PROMPT, reader.read())).value, "still serving");
  reader.releaseLock();
}

/** A TLS record header announcing a 16 KiB ClientHello, and 4 of its bytes. */
const STALLED_CLIENT_HELLO = new Uint8Array([
  0x16, // handshake
  0x03,
  0x01, // TLS 1.0 record layer, as ClientHellos say
  0x40,
  0x00, // 16384 bytes to follow…
  0x01, // ClientHello
  0x00,
  0x3f,
  0xfc, // …of which these are all that ever come
]);

describe(`garbage instead of TLS on ${runtimeName()}`, () => {
  faultTest(
    "serve over TLS ends a client that speaks plain HTTP at once, and serves on",
    async (defer) => {
      const { port, log, errors } = await tlsServer(defer, 5_000); // not what ends it
      const transport = await rawTcp(port, defer);
      const writer = transport.writable.getWriter();
      await writer.write(encoder.encode(
        `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\n\r\n`,
      ));
      const took = await elapsed(() =>
        within(PROMPT, readToEnd(transport.readable.getReader()))
      );
      between(took, 0, PROMPT, "the server ended the connection");
      // Whatever reached the server (Deno: the socket; Bun: also, since it
      // hands sockets over before their TLS handshake) it closed.
      for (const tracked of log.all) await within(PROMPT, tracked.closed);
      await stillServes(defer, port);
      assert.deepEqual(errors, [], "a client's fault is no server error");
    },
  );

  faultTest(
    "serve over TLS closes a client stalled inside its ClientHello at its deadlines",
    async (defer) => {
      // Runs last (cleanups run in reverse): once the raw client has gone,
      // Deno's stalled TLS connection needs a moment to end.
      defer(() => settle(50));
      const { port, log, errors } = await tlsServer(defer);
      const transport = await rawTcp(port, defer);
      const start = performance.now();
      await transport.writable.getWriter().write(STALLED_CLIENT_HELLO);
      const accepted = await log.nth(0);
      // The handshake deadline passes; the 408 cannot go out on a TLS
      // connection that never started, so the socket is closed when the
      // refusal's own deadline (closeTimeout) passes.
      const closedAt = await within(3_000, accepted.closed);
      const deadline = HANDSHAKE_TIMEOUT + CLOSE_TIMEOUT;
      between(closedAt - start, deadline - 50, deadline + 700, "closed");
      if (CLOSES_MID_TLS_HANDSHAKE) {
        await within(PROMPT, readToEnd(transport.readable.getReader()));
        between(
          performance.now() - start,
          deadline - 50,
          deadline + 700,
          "ended",
        );
      }
      await stillServes(defer, port);
      assert.deepEqual(errors, []);
    },
  );

  faultTest(
    "connect over wss: to a plain TCP server that sends garbage rejects at once with the runtime's TLS error",
    async (defer) => {
      const ended = Promise.withResolvers<number>();
      const { url } = await rawServer(defer, async (transport) => {
        await transport.writable.getWriter().write(
          encoder.encode("SSH-2.0-OpenSSH_9.6\r\n"),
        );
        await readToEnd(transport.readable.getReader());
        ended.resolve(performance.now());
      });
      const start = performance.now();
      const error = await within(
        PROMPT,
        connect(url.replace("ws:", "wss:"), { handshakeTimeout: 5_000 }).then(
          () => assert.fail("connected"),
          (error: unknown) => error,
        ),
      );
      between(performance.now() - start, 0, PROMPT, "rejected");
      // Not wsstream's own error: the runtime's TLS failure, passed through.
      assert.ok(!(error instanceof WebSocketError), `${error}`);
      if (runtimeName() === "deno") {
        assert.ok(error instanceof Deno.errors.InvalidData, `${error}`);
      } else {
        assert.equal((error as { code?: string }).code, "EPROTO", `${error}`);
      }
      // And the client closed its socket: the server read to the end.
      between(await within(PROMPT, ended.promise) - start, 0, PROMPT, "freed");
    },
  );

  faultTest(
    "connect over wss: to a server that never answers the ClientHello rejects with TimeoutError at handshakeTimeout",
    async (defer) => {
      // Runs last: on Deno the client's socket ends when the raw server's
      // does (its cleanup), a moment later.
      defer(() => settle(50));
      const ended = Promise.withResolvers<number>();
      const { url } = await rawServer(defer, async (transport) => {
        await readToEnd(transport.readable.getReader());
        ended.resolve(performance.now());
      });
      const start = performance.now();
      await assert.rejects(
        within(
          3_000,
          connect(url.replace("ws:", "wss:"), {
            handshakeTimeout: HANDSHAKE_TIMEOUT,
          }),
        ),
        TimeoutError,
      );
      const took = performance.now() - start;
      between(
        took,
        HANDSHAKE_TIMEOUT - 50,
        HANDSHAKE_TIMEOUT + 700,
        "timed out",
      );
      if (CLOSES_MID_TLS_HANDSHAKE) {
        between(
          await within(PROMPT, ended.promise) - start,
          0,
          took + 200,
          "freed",
        );
      }
    },
  );
});
