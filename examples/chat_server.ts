/**
 * A chat in the browser: rooms, who is present, each room's recent
 * history, over `serve` and `PubSub`, shared between processes through
 * Redis when `REDIS_URL` is set.
 *
 *     deno task demo                  # then open http://127.0.0.1:8080/
 *     bun run examples/chat_server.ts
 *
 * Environment:
 * - `HOSTNAME` (default 127.0.0.1) and `PORT` (default 8080; 0 picks a free
 *   port, and the line printed at start names the real one). Some shells
 *   export `HOSTNAME` (the machine's name): set it when that is not the
 *   address you want.
 * - `ORIGINS`: comma-separated globs of the origins whose pages may connect
 *   besides the page's own, e.g. `https://*.example.com,localhost:*` (`serve`'s
 *   `origins`: a glob with `://` matches the whole origin, one without its
 *   `host[:port]`). Unset or empty, only the page's own origin (its host is
 *   the request's `Host`) may. A request with no `Origin` (not from a
 *   browser) is let in: an origin check protects browsers' users from other
 *   sites' pages, not the server from programs.
 * - `REDIS_URL` (optional, `redis://[:password@]host[:port]`): every process
 *   started with the same URL shares the rooms.
 *
 * HTTP: `GET /` is the page. WebSockets: `/rooms/<room>?name=<name>`, a
 * `Router` route; any other path, or a room name that is not one, is
 * refused with 404, a disallowed `Origin` with 403 (checked first). Each text
 * message is sent to everyone in the room, the sender included, as
 * `{"type":"message","room","from","text","time"}`; a client also gets
 * `{"type":"history","room","messages","present"}` on joining and
 * `{"type":"join"|"leave","room","name"}` as people come and go (a process
 * started later than the others learns who is present from the joins and
 * leaves it sees, and its history starts empty). A binary
 * message closes its sender with 1003. SIGINT or SIGTERM closes every
 * connection with 1001 and exits 0.
 *
 * @module
 */
import {
  PubSub,
  RedisBroker,
  Router,
  type RouteRequest,
  serve,
  type WebSocketConnection,
} from "../mod.ts";

const env = globalThis.process?.env ?? {};
const hostname = env.HOSTNAME || "127.0.0.1";
const port = Number(env.PORT || "8080");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  throw new RangeError(`PORT must be a port number (0 for any), got ${port}`);
}
// serve's `origins`: `[]` (ORIGINS unset or empty) allows the page's own
// origin only; each glob allows more.
const origins = (env.ORIGINS ?? "").split(",").map((o) => o.trim())
  .filter((o) => o !== "");
const redisUrl = env.REDIS_URL || "";

/** How many messages of each room a newcomer is shown. */
const HISTORY = 50;
const ROOM = /^[\p{L}\p{N}_.-]{1,64}$/u;
const MAX_NAME = 32;

// ---- rooms: every process's view, kept from the topics themselves ----

interface ChatMessage {
  type: "message";
  room: string;
  from: string;
  text: string;
  time: number;
}
type ChatEvent =
  | ChatMessage
  | { type: "join" | "leave"; room: string; name: string };

interface Room {
  history: ChatMessage[];
  /** Names present, with how many connections each has open. */
  present: Map<string, number>;
}
const rooms = new Map<string, Room>();
const roomOf = (name: string): Room => {
  let room = rooms.get(name);
  if (room === undefined) {
    rooms.set(name, room = { history: [], present: new Map() });
  }
  return room;
};

const broker = redisUrl ? new RedisBroker({ url: redisUrl }) : undefined;
const topics = new PubSub({
  // A reader too far behind (1 MiB unsent) misses messages rather than
  // holding the room back; each miss is logged.
  slow: "skip",
  onDrop: (drop) =>
    console.warn(`${drop.action} a slow reader of ${drop.topic}`),
  ...(broker ? { broker } : {}),
});
// The server hears every room, here and in the other processes.
topics.listen("rooms/*", (_topic, data) => {
  const event = JSON.parse(String(data)) as ChatEvent;
  const room = roomOf(event.room);
  if (event.type === "message") {
    room.history.push(event);
    if (room.history.length > HISTORY) room.history.shift();
  } else {
    const count = (room.present.get(event.name) ?? 0) +
      (event.type === "join" ? 1 : -1);
    if (count > 0) room.present.set(event.name, count);
    else room.present.delete(event.name);
  }
});
if (broker) {
  // Listen only once the rooms are shared (a join published before would
  // reach no other process), but not wait forever for a Redis that is down:
  // the broker keeps trying, and counts what is lost meanwhile.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const up = await Promise.race([
    broker.ready.then(() => true),
    new Promise<false>((resolve) => timer = setTimeout(resolve, 5000, false)),
  ]);
  clearTimeout(timer);
  if (!up) console.warn(`Redis at ${redisUrl} is not answering yet`);
}
const publish = (event: ChatEvent) =>
  topics.publish(`rooms/${event.room}`, JSON.stringify(event));

// ---- the WebSocket side ----

/** What the route's upgrade attaches to each connection. */
interface Member {
  room: string;
  name: string;
}

/**
 * The route's deferred upgrade: the room `*` matched (percent-decoded) and
 * the name from `?name=`, as the connection's typed `data`; 404 for what
 * the glob matches but is no room (`*` matches `/` too, and nothing).
 */
function member(request: RouteRequest): { data: Member } | Response {
  let room: string;
  try {
    room = decodeURIComponent(request.params[0]!);
  } catch {
    room = "";
  }
  if (!ROOM.test(room)) {
    return new Response("Not found: WebSockets are at /rooms/<room>\n", {
      status: 404,
    });
  }
  const name = new URLSearchParams(request.query).get("name")?.trim() ?? "";
  return { data: { room, name: name.slice(0, MAX_NAME) || "anonymous" } };
}

async function chat(connection: WebSocketConnection<Member>) {
  const { room, name } = connection.data;
  const { history, present } = roomOf(room);
  // The history, then (subscribed in the same turn) everything after it.
  const sent = connection.send(JSON.stringify({
    type: "history",
    room,
    messages: history,
    present: [...present.keys()],
  }));
  topics.subscribe(connection, `rooms/${room}`);
  await sent;
  await publish({ type: "join", room, name });
  try {
    for await (const message of connection) {
      if (typeof message !== "string") {
        await connection.close({ closeCode: 1003, reason: "Text only" });
        break;
      }
      await publish({
        type: "message",
        room,
        from: name,
        text: message,
        time: Date.now(),
      });
    }
  } finally {
    await publish({ type: "leave", room, name });
  }
}

// Any other WebSocket path: the router's 404.
const router = new Router<Member>().route("/rooms/*", chat, {
  onUpgrade: member,
});
// SIGINT or SIGTERM aborts it: serve then closes every connection with 1001
// (its shutdown's default code) and resolves `finished`.
const shutdown = new AbortController();
const server = await serve({
  hostname,
  port,
  maxMessageSize: 16 * 1024,
  origins,
  signal: shutdown.signal,
  onUpgrade: router.onUpgrade,
  fallback(request) {
    const url = new URL(request.url);
    if (url.pathname !== "/") {
      return new Response("Not found\n", { status: 404 });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("Method not allowed\n", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    return new Response(page(), {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy":
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
      },
    });
  },
}, router.handler);

const host = server.addr.hostname.includes(":")
  ? `[${server.addr.hostname}]`
  : server.addr.hostname;
console.log(
  `wsstream chat listening on http://${host}:${server.addr.port}/${
    broker ? " (rooms shared through Redis)" : ""
  }`,
);

const signals = ["SIGINT", "SIGTERM"] as const;
const onSignal = () => {
  // A second signal, with the listeners gone, ends the process at once.
  for (const signal of signals) globalThis.process.off(signal, onSignal);
  shutdown.abort();
};
for (const signal of signals) globalThis.process.on(signal, onSignal);
server.finished.then(async () => {
  await topics.close();
  globalThis.process.exit(0);
});

// ---- the page: no build step, no external assets ----

/** The page (a function: hoisted, there before the module's end). */
function page(): string {
  return `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wsstream chat</title>
<style>
  body { font: 16px/1.4 system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; }
  header, footer { padding: .5rem; background: #f2f2f2; display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
  main { flex: 1; display: flex; min-height: 0; }
  #messages { flex: 1; overflow-y: auto; padding: .5rem; margin: 0; list-style: none; }
  #messages .event { color: #777; font-style: italic; }
  #present { width: 12rem; border-left: 1px solid #ddd; padding: .5rem; margin: 0; overflow-y: auto; }
  #input { flex: 1; }
  b { margin-right: .3rem; }
</style>
<header>
  <label>Name <input data-testid="name" id="name" maxlength="32" autocomplete="nickname"></label>
  <label>Room <input data-testid="room" id="room" value="lobby" maxlength="64"></label>
  <button data-testid="join" id="join">Join</button>
  <span id="status" data-testid="status">not connected</span>
</header>
<main>
  <ul id="messages" aria-live="polite"></ul>
  <ul id="present" data-testid="present" aria-label="Present"></ul>
</main>
<footer>
  <input data-testid="input" id="input" placeholder="Say something, then Enter" disabled>
  <button data-testid="send" id="send" disabled>Send</button>
</footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const nameField = $("name"), roomField = $("room"), input = $("input");
nameField.value = sessionStorage.getItem("name") || "";
roomField.value = sessionStorage.getItem("room") || "lobby";
let socket = null;
let present = new Map();

function line(text, className) {
  const item = document.createElement("li");
  if (className) item.className = className;
  item.textContent = text;
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
}
function message(m) {
  const item = document.createElement("li");
  item.dataset.testid = "message";
  const from = document.createElement("b");
  from.textContent = m.from + ":";
  item.append(from, document.createTextNode(m.text));
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
}
function showPresent() {
  const list = $("present");
  list.replaceChildren(...[...present.keys()].sort().map((name) => {
    const item = document.createElement("li");
    item.textContent = name;
    return item;
  }));
}
function setConnected(on, status) {
  input.disabled = !on;
  $("send").disabled = !on;
  $("status").textContent = status;
  if (on) input.focus();
}
function join() {
  const name = nameField.value.trim(), room = roomField.value.trim();
  if (!name || !room) return;
  sessionStorage.setItem("name", name);
  sessionStorage.setItem("room", room);
  if (socket) socket.close(1000);
  $("messages").replaceChildren();
  present = new Map();
  showPresent();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = scheme + "//" + location.host + "/rooms/" +
    encodeURIComponent(room) + "?name=" + encodeURIComponent(name);
  const ws = socket = new WebSocket(url);
  ws.onopen = () => setConnected(true, "in " + room + " as " + name);
  ws.onclose = (event) => {
    if (ws !== socket) return;
    socket = null;
    setConnected(false, "disconnected (" + event.code + ")");
  };
  ws.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "history") {
      for (const m of data.messages) message(m);
      for (const name of data.present) present.set(name, 1);
      showPresent();
    } else if (data.type === "message") message(data);
    else if (data.type === "join" || data.type === "leave") {
      const count = (present.get(data.name) || 0) + (data.type === "join" ? 1 : -1);
      if (count > 0) present.set(data.name, count);
      else present.delete(data.name);
      showPresent();
      line(data.name + (data.type === "join" ? " joined" : " left"), "event");
    }
  };
}
function send() {
  const text = input.value;
  if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(text);
  input.value = "";
}
$("join").onclick = join;
for (const field of [nameField, roomField]) {
  field.onkeydown = (event) => { if (event.key === "Enter") join(); };
}
$("send").onclick = send;
input.onkeydown = (event) => { if (event.key === "Enter") send(); };
</script>
</html>
`;
}
