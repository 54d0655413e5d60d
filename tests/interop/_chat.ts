/**
 * Starts `examples/chat_server.ts` as a subprocess on a free port (killed
 * and waited for when the test ends), and reads its JSON events.
 */
import assert from "node:assert/strict";
import type { WebSocketConnection } from "../../mod.ts";
import type { Defer } from "./_harness.ts";
import { messageReader } from "./_ours.ts";
import { runExample, type Subprocess } from "./_process.ts";

/** The runtime loading and compiling the example. */
const START_TIMEOUT = 15_000;

/** A running chat server. */
export interface Chat {
  child: Subprocess;
  /** `http://127.0.0.1:<port>` */
  http: string;
  /** `ws://127.0.0.1:<port>` */
  ws: string;
}

/** Starts the chat example with `env` (PORT 0 unless given). */
export async function startChat(
  defer: Defer,
  env: Record<string, string> = {},
): Promise<Chat> {
  const child = runExample("chat_server.ts", {
    HOSTNAME: "127.0.0.1",
    PORT: "0",
    ...env,
  });
  defer(async () => {
    child.kill("SIGKILL");
    await child.exited;
  });
  let line: string;
  try {
    line = await child.lines.next(
      START_TIMEOUT,
      "the chat server's first line",
    );
  } catch (error) {
    throw new Error(`The chat server did not start: ${child.stderr()}`, {
      cause: error,
    });
  }
  const match = /^wsstream chat listening on http:\/\/127\.0\.0\.1:(\d+)\//
    .exec(line);
  assert.ok(match, `unexpected first line: ${JSON.stringify(line)}`);
  const port = match[1]!;
  return {
    child,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
  };
}

/** A chat event as the server sends it. */
// deno-lint-ignore no-explicit-any
export type ChatEvent = Record<string, any>;

/** Reads a connection's messages as JSON chat events. */
export function chatEvents(connection: WebSocketConnection): {
  next(what: string): Promise<ChatEvent>;
  /** The next event of `type`, skipping others. */
  nextOf(type: string, what: string): Promise<ChatEvent>;
  end(what: string): Promise<void>;
} {
  const messages = messageReader(connection);
  const next = async (what: string) => {
    const message = await messages.next(what);
    assert.equal(typeof message, "string", `${what}: text`);
    return JSON.parse(message as string) as ChatEvent;
  };
  return {
    next,
    async nextOf(type, what) {
      for (;;) {
        const event = await next(what);
        if (event.type === type) return event;
      }
    },
    end: (what) => messages.end(what),
  };
}
