/**
 * A child script: two connections over a pipe, the server one with the
 * default keepalive (a ping every 30 s), the client one with keepalive
 * options that its caller changes after, closed at once. It prints "closed";
 * the process must then exit by itself, with no keepalive timer left behind.
 *
 * @module
 */
import { takeover } from "../../mod.ts";
import { pipe } from "../_pipe.ts";

const [a, b] = pipe();
const server = takeover(a, { role: "server" }); // keepalive on by default
const keepalive = { interval: 20_000 };
const client = takeover(b, { role: "client", keepalive });
// The caller's object changed afterwards must not change which deadline the
// connection removes when it closes.
keepalive.interval = 1;
await Promise.all([server.close(), client.closed]);
console.log("closed");
