/**
 * Keepalive: a ping every `interval`, and the connection dropped (1006)
 * when its pong does not come within `timeout`.
 *
 * The deadlines live in queues shared by every connection, one per
 * duration (each with one timer), instead of a timer and closures per
 * connection: most connections are idle, and this is most of what an idle
 * connection would otherwise hold.
 *
 * @module
 */

import type { ConnectionSettings } from "./connection_options.ts";
import type { ConnectionState } from "./_connection_end.ts";
import { type Deadline, DeadlineQueues } from "./_deadline_queue.ts";

/** What keepalive needs of a connection: its events object provides it. */
export interface KeepaliveHost {
  readonly settings: ConnectionSettings;
  readonly state: ConnectionState;
  /** The connection's one running deadline (a ping or a pong due). */
  deadline: Deadline<unknown> | null;
  /** Sends a ping; resolves when its pong comes. */
  sendPing(): Promise<number>;
  /** No pong in time: the connection is dropped. */
  keepaliveTimedOut(): void;
}

const pingsDue = new DeadlineQueues<KeepaliveHost>(keepalivePing);
const pongsDue = new DeadlineQueues<KeepaliveHost>((host) =>
  host.keepaliveTimedOut()
);

/** The next keepalive ping of `host` is due in `interval` ms. */
export function scheduleKeepalive(host: KeepaliveHost): void {
  host.deadline = pingsDue.add(host.settings.keepalive!.interval, host);
}

function keepalivePing(host: KeepaliveHost): void {
  if (host.state !== "open") return;
  const pongDue = pongsDue.add(host.settings.keepalive!.timeout, host);
  host.deadline = pongDue;
  host.sendPing().then(
    () => {
      // Not when the pong came too late, or the connection ended.
      if (pongDue.unlink() && host.state === "open") scheduleKeepalive(host);
    },
    () => pongDue.unlink(),
  );
}
