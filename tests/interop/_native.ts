/**
 * The running runtime's OWN WebSocket, as the other end of interop tests: an
 * echo server (`Deno.serve` + `Deno.upgradeWebSocket` on Deno, `Bun.serve`
 * on Bun) and a client (the global `WebSocket`, the same API on both).
 */
import { requireBun } from "./_bun.ts";
import { Inbox, IS_DENO, within } from "./_harness.ts";
import { fromNative, type Payload } from "./_messages.ts";

const HOST = "127.0.0.1";

/** How a native socket saw its connection end. */
export interface NativeClose {
  code: number;
  reason: string;
  /** Whether the close handshake completed (reported by clients only). */
  wasClean?: boolean;
}

/** One connection accepted by the native server, once open. */
export interface NativePeer {
  /** The subprotocols the client offered, in its order. */
  offered: string[];
  /** The one the server selected ("" for none). */
  selected: string;
  /** Settles with the native close event's code and reason. */
  closed: Promise<NativeClose>;
  /** Starts the closing handshake from the native side. */
  close(code: number, reason: string): void;
}

/** A native echo server on a free port of 127.0.0.1. */
export interface NativeServer {
  /** `ws://127.0.0.1:PORT`. */
  url: string;
  /** The connections, as they open. */
  peers: Inbox<NativePeer>;
  /** Closes every connection still open and stops the server. */
  close(): Promise<void>;
}

/** Options for {@link nativeEchoServer}. */
export interface NativeServerOptions {
  /** Picks the subprotocol from those offered (default: none). */
  select?: (offered: string[]) => string | undefined;
}

function offeredProtocols(request: Request): string[] {
  return (request.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((token) => token.trim()).filter((token) => token !== "");
}

/**
 * Starts the runtime's native WebSocket server, echoing every message back
 * as it came (text as text, binary as binary). Native servers answer pings
 * by themselves.
 */
export function nativeEchoServer(
  options: NativeServerOptions = {},
): Promise<NativeServer> {
  return IS_DENO ? denoEchoServer(options) : bunEchoServer(options);
}

function denoEchoServer(options: NativeServerOptions): Promise<NativeServer> {
  const peers = new Inbox<NativePeer>();
  const open = new Map<WebSocket, Promise<NativeClose>>();
  const server = Deno.serve(
    { hostname: HOST, port: 0, onListen() {} },
    (request) => {
      const offered = offeredProtocols(request);
      const selected = options.select?.(offered) ?? "";
      const { socket, response } = Deno.upgradeWebSocket(
        request,
        selected === "" ? {} : { protocol: selected },
      );
      socket.binaryType = "arraybuffer";
      const closed = new Promise<NativeClose>((resolve) => {
        socket.onclose = (event) => {
          open.delete(socket);
          resolve({ code: event.code, reason: event.reason });
        };
      });
      open.set(socket, closed);
      socket.onmessage = (event) => socket.send(event.data);
      socket.onopen = () =>
        peers.push({
          offered,
          selected,
          closed,
          close: (code, reason) => socket.close(code, reason),
        });
      return response;
    },
  );
  return Promise.resolve({
    url: `ws://${HOST}:${server.addr.port}`,
    peers,
    async close() {
      const closing = [...open].map(([socket, closed]) => {
        if (socket.readyState === WebSocket.OPEN) socket.close(1001);
        return closed;
      });
      await within(5_000, Promise.all(closing), "closing native sockets");
      await server.shutdown();
    },
  });
}

interface BunPeerData {
  offered: string[];
  selected: string;
  closed: PromiseWithResolvers<NativeClose>;
}

function bunEchoServer(options: NativeServerOptions): Promise<NativeServer> {
  const peers = new Inbox<NativePeer>();
  const server = requireBun().serve<BunPeerData>({
    hostname: HOST,
    port: 0,
    fetch(request, server) {
      const offered = offeredProtocols(request);
      const selected = options.select?.(offered) ?? "";
      const upgraded = server.upgrade(request, {
        headers: selected === "" ? {} : { "Sec-WebSocket-Protocol": selected },
        data: { offered, selected, closed: Promise.withResolvers() },
      });
      return upgraded ? undefined : new Response("Not a WebSocket request", {
        status: 400,
      });
    },
    websocket: {
      open(ws) {
        peers.push({
          offered: ws.data.offered,
          selected: ws.data.selected,
          closed: ws.data.closed.promise,
          close: (code, reason) => ws.close(code, reason),
        });
      },
      // Bun gives text as a string and binary as a Buffer (a Uint8Array):
      // sending either back keeps its type.
      message: (ws, message) => void ws.send(message),
      close: (ws, code, reason) => ws.data.closed.resolve({ code, reason }),
    },
  });
  return Promise.resolve({
    url: `ws://${HOST}:${server.port}`,
    peers,
    close: () => server.stop(true),
  });
}

/** The runtime's native `WebSocket` client, opened. */
export interface NativeClient {
  /** The native socket itself. */
  socket: WebSocket;
  /** The messages received (unless it echoes them). */
  messages: Inbox<Payload>;
  /** Settles with the native close event. */
  closed: Promise<Required<NativeClose>>;
  /** Closes (if open) and waits for the close event. */
  close(code?: number, reason?: string): Promise<Required<NativeClose>>;
}

/**
 * Opens the runtime's native `WebSocket` (`binaryType = "arraybuffer"`) and
 * waits for its open event. With `echo`, it sends every message it receives
 * straight back instead of queueing it.
 */
export async function openNativeClient(
  url: string,
  protocols: string[] = [],
  options: { echo?: boolean } = {},
): Promise<NativeClient> {
  const socket = new WebSocket(url, protocols);
  socket.binaryType = "arraybuffer";
  const messages = new Inbox<Payload>();
  const closed = new Promise<Required<NativeClose>>((resolve) => {
    socket.onclose = (event) =>
      resolve({
        code: event.code,
        reason: event.reason,
        wasClean: event.wasClean,
      });
  });
  socket.onmessage = (event) => {
    if (options.echo) socket.send(event.data);
    else messages.push(fromNative(event.data));
  };
  const opened = new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () =>
      reject(new Error(`Native WebSocket to ${url} failed`));
  });
  try {
    await within(5_000, opened, `opening ${url}`);
  } catch (error) {
    socket.close();
    await within(5_000, closed, `closing ${url}`);
    throw error;
  }
  socket.onerror = null;
  return {
    socket,
    messages,
    closed,
    close(code, reason) {
      if (
        socket.readyState === WebSocket.OPEN ||
        socket.readyState === WebSocket.CONNECTING
      ) {
        socket.close(code, reason);
      }
      return within(5_000, closed, `closing ${url}`);
    },
  };
}
