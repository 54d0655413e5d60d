/**
 * Measures what the wrapped native path lacks against our `serve`: runs
 * the conformance cases (tests/conformance/cases.ts, the raw peer as the
 * client) against an echo under the running runtime's own server through
 * its adapter, and against our `serve`, and prints a table of passes per
 * category and the ids that failed on the native path. Not part of the
 * suite (it is expected to fail cases); its figures are in the README:
 *
 *     deno run -A tests/adapters/conformance.ts
 *     bun tests/adapters/conformance.ts
 */
import { cases, CATEGORIES } from "../conformance/cases.ts";
import { Peer } from "../conformance/_peer.ts";
import { serve } from "../../src/server.ts";
import type { PortableHandler } from "../../src/adapters/native_connection.ts";
import { denoWebSocket } from "../../src/adapters/deno_serve.ts";
import { bunWebSocket } from "../../src/adapters/bun_serve.ts";

const IS_DENO = typeof Deno !== "undefined";
/** `WSSTREAM_ADAPTER_DETAIL=1`: print why each case failed, on stderr. */
const DETAIL = (globalThis as { process?: { env: Record<string, string> } })
  .process?.env.WSSTREAM_ADAPTER_DETAIL === "1";

const echo: PortableHandler = async (connection) => {
  try {
    for await (const message of connection) await connection.send(message);
  } catch {
    // Failed by the peer: what the case checks.
  }
};

interface Started {
  port: number;
  close(): Promise<unknown>;
}

async function native(): Promise<Started> {
  if (IS_DENO) {
    const upgrade = denoWebSocket({ onError: () => {} }, echo);
    return await new Promise((resolve) => {
      const server = Deno.serve(
        {
          hostname: "127.0.0.1",
          port: 0,
          onListen: ({ port }) =>
            resolve({ port, close: () => server.shutdown() }),
        },
        async (request, info) =>
          (await upgrade(request, info)) ?? new Response("no"),
      );
    });
  }
  const ws = bunWebSocket({ onError: () => {} }, echo);
  const server = (globalThis as unknown as {
    Bun: {
      serve(o: unknown): { port: number; stop(all: boolean): Promise<void> };
    };
  }).Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request: Request, server: Parameters<typeof ws.upgrade>[1]) {
      return (await ws.upgrade(request, server)) ?? new Response("no");
    },
    websocket: ws.websocket,
  });
  return { port: server.port, close: () => server.stop(true) };
}

async function ours(): Promise<Started> {
  const server = await serve({
    hostname: "127.0.0.1",
    port: 0,
    keepalive: false,
    onError: () => {},
  }, echo);
  return { port: server.addr.port, close: () => server.close() };
}

async function runAll(start: () => Promise<Started>) {
  const failed = new Map<string, string[]>();
  const passed = new Map<string, number>();
  for (const testCase of cases) {
    if (testCase.options !== undefined) continue; // our own limits
    const server = await start();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let peer: Peer | null = null;
    try {
      peer = await Peer.connect(server.port);
      await Promise.race([
        testCase.run(peer),
        new Promise((_, reject) =>
          timer = setTimeout(() => reject(new Error("timeout")), 3_000)
        ),
      ]);
      passed.set(testCase.category, (passed.get(testCase.category) ?? 0) + 1);
    } catch (error) {
      if (DETAIL) console.error(testCase.id, String(error).split("\n")[0]);
      const list = failed.get(testCase.category) ?? [];
      list.push(testCase.id);
      failed.set(testCase.category, list);
    } finally {
      clearTimeout(timer);
      await peer?.close().catch(() => {});
      await server.close().catch(() => {});
    }
  }
  return { passed, failed };
}

const name = IS_DENO ? "Deno.serve" : "Bun.serve";
const wrapped = await runAll(native);
const own = await runAll(ours);
console.log(`| category | our serve | ${name} (wrapped) | failed on ${name} |`);
console.log("| --- | --: | --: | --- |");
for (const { id, title } of CATEGORIES) {
  const total = (own.passed.get(id) ?? 0) + (own.failed.get(id)?.length ?? 0);
  if (total === 0) continue;
  const list = wrapped.failed.get(id) ?? [];
  console.log(
    `| ${id} ${title} | ${own.passed.get(id) ?? 0}/${total} | ${
      wrapped.passed.get(id) ?? 0
    }/${total} | ${list.join(", ")} |`,
  );
}
