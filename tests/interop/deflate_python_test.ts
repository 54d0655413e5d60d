/**
 * permessage-deflate against Python's `websockets` (Debian's
 * python3-websockets, run by `/usr/bin/python3`), both ends: its server
 * (compression on by default, answering with window bits of 12) against our
 * client, and its client against our `serve({ deflate: true })`. Skipped with
 * a message when `/usr/bin/python3` or its `websockets` is absent.
 *
 *     deno task test tests/interop/deflate_python_test.ts
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { connect } from "../../src/client.ts";
import { serve } from "../../src/server.ts";
import { within } from "../_wait.ts";

const PYTHON = "/usr/bin/python3";
const HOST = "127.0.0.1";
const skip = !existsSync(PYTHON)
  ? `${PYTHON} is absent`
  : spawnSync(PYTHON, ["-c", "import websockets"]).status !== 0
  ? `${PYTHON} has no websockets module (apt-get install python3-websockets)`
  : false;

/**
 * Runs a Python script; `done` resolves with its stdout once it exits 0.
 * On Deno through `Deno.Command`, whose process and status the sanitizers
 * see closed when `done` settles; on Bun through `node:child_process`.
 */
function python(
  script: string,
  args: string[],
  onLine: (line: string) => void = () => {},
): { done: Promise<string>; kill(): void } {
  let out = "";
  let partial = "";
  const decoder = new TextDecoder();
  const onText = (text: string) => {
    out += text;
    partial += text;
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  };
  if (typeof Deno !== "undefined") {
    const child = new Deno.Command(PYTHON, {
      args: ["-c", script, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reading = (async () => {
      for await (const chunk of child.stdout) {
        onText(decoder.decode(chunk, { stream: true }));
      }
    })();
    const errors = new Response(child.stderr).text();
    const done = Promise.all([child.status, reading, errors]).then(
      ([status, , err]) => {
        if (status.code !== 0) throw new Error(`python: ${status.code} ${err}`);
        return out;
      },
    );
    return {
      done,
      kill: () => {
        try {
          child.kill("SIGKILL");
        } catch {
          // It exited already.
        }
      },
    };
  }
  const child = spawn(PYTHON, ["-c", script, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stdout.on("data", (chunk: Uint8Array) => {
    onText(decoder.decode(chunk, { stream: true }));
  });
  child.stderr.on("data", (chunk: Uint8Array) => {
    err += new TextDecoder().decode(chunk);
  });
  const done = new Promise<string>((resolve, reject) => {
    child.on(
      "close",
      (code: number | null) =>
        code === 0 ? resolve(out) : reject(new Error(`python: ${code} ${err}`)),
    );
  });
  return { done, kill: () => child.kill("SIGKILL") };
}

const ECHO_SERVER = `
import asyncio, sys, websockets
async def echo(ws):
    print("agreed", ws.response_headers.get("Sec-WebSocket-Extensions"), flush=True)
    async for message in ws:
        await ws.send(message)
async def main():
    async with websockets.serve(echo, "${HOST}", 0, max_size=2**24) as server:
        print("port", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(20)
asyncio.run(main())
`;

const CLIENT = `
import asyncio, sys, websockets
async def main():
    async with websockets.connect(sys.argv[1]) as ws:
        print("agreed", ws.response_headers.get("Sec-WebSocket-Extensions"))
        for message in ["hello " * 5000, bytes(range(256)) * 300, "x", "", b""]:
            await ws.send(message)
            assert await ws.recv() == message
        print("ok")
asyncio.run(main())
`;

test("our client against Python websockets' server, compression agreed", {
  skip,
  timeout: 20_000,
}, () =>
  within(
    15_000,
    (async () => {
      let port: (value: number) => void;
      const listening = new Promise<number>((resolve) => (port = resolve));
      const server = python(ECHO_SERVER, [], (line) => {
        if (line.startsWith("port ")) port(Number(line.slice(5)));
      });
      server.done.catch(() => {});
      try {
        const connection = await connect(`ws://${HOST}:${await listening}/`);
        assert.deepEqual(connection.info.extensions, [{
          name: "permessage-deflate",
          params: {
            server_max_window_bits: "12",
            client_max_window_bits: "12",
          },
        }]);
        const messages = [
          "hello ".repeat(5000),
          new Uint8Array(80_000).fill(7),
          "x",
          "",
        ];
        const reader = connection[Symbol.asyncIterator]();
        for (const message of messages) {
          await connection.send(message);
          assert.deepEqual((await reader.next()).value, message);
        }
        await connection.send(
          ReadableStream.from(["one ".repeat(999), "two ".repeat(999)]),
        );
        assert.equal(
          (await reader.next()).value,
          "one ".repeat(999) + "two ".repeat(999),
        );
        assert.ok(
          connection.info.bytesSent < 2_000,
          `${connection.info.bytesSent} sent`,
        );
        await connection.close();
      } finally {
        server.kill();
        // Its exit awaited here, inside the test: Deno's sanitizers count
        // the process and its pipes as this test's.
        await server.done.catch(() => {});
      }
    })(),
  ));

test("Python websockets' client against our serve({ deflate: true })", {
  skip,
  timeout: 20_000,
}, () =>
  within(
    15_000,
    (async () => {
      let agreed = "";
      const server = await serve({
        hostname: HOST,
        port: 0,
        deflate: true,
        keepalive: false,
      }, async (connection) => {
        agreed = connection.extensions.map((e) => e.name).join();
        for await (const message of connection) await connection.send(message);
      });
      try {
        const out = await python(CLIENT, [`ws://${HOST}:${server.addr.port}/`])
          .done;
        assert.match(out, /^agreed permessage-deflate/);
        assert.match(out, /^ok$/m);
        assert.equal(agreed, "permessage-deflate");
      } finally {
        await server.close();
      }
    })(),
  ));
