/**
 * The fuzzer's three ways of running a case against our endpoints, each
 * returning the problems found (none when it went as the RFCs say):
 *
 * - {@link runTakeover}: a frame stream through `takeover()` over the
 *   in-memory pipe of `tests/_pipe.ts`; no handshake.
 * - {@link runServerSession}: a raw client against our `serve()`: a request
 *   (fuzzed or valid), then, after a 101, a frame stream.
 * - {@link runClientSession}: our `connect()` against a raw server: a
 *   response (fuzzed or valid) and a frame stream, written together.
 *
 * Every wait is bounded; whatever a case opens is closed through `defer`,
 * which the runner calls even when the case overran its deadline.
 *
 * @module
 */
import {
  connect,
  HandshakeError,
  takeover,
  TimeoutError,
  type WebSocketConnection,
} from "../../mod.ts";
import { concatAll } from "../_frames.ts";
import { pipe } from "../_pipe.ts";
import { within } from "../_wait.ts";
import {
  type AppResult,
  checkFrameRun,
  runApplication,
} from "./_frame_check.ts";
import { type AppMode, type FrameStream, FUZZ_LIMITS } from "./_frame_cases.ts";
import { expectFrames } from "./_frame_oracle.ts";
import {
  CLOSE_TIMEOUT,
  HANDSHAKE_TIMEOUT,
  type Harness,
  HOST,
} from "./_harness.ts";
import {
  acceptFor,
  fieldHasToken,
  fieldOf,
  judgeRequest,
  judgeResponse,
  parseServerResponse,
  VERSION_MISMATCH,
} from "./_http_oracle.ts";
import { hasHead, headEnd, RawEnd } from "./_raw_end.ts";

/** How long any one step may wait: well past every deadline of ours. */
const STEP = CLOSE_TIMEOUT * 2 + HANDSHAKE_TIMEOUT + 1_000;

/** Registers cleanup to run at the end of the case, whatever happened. */
export type Defer = (cleanup: () => unknown) => void;

/** A frame stream for one endpoint over `takeover()`. */
export interface TakeoverCase {
  role: "server" | "client";
  frames: FrameStream;
  mode: AppMode;
  highWaterMark: number;
}

/** Runs a frame stream through `takeover()` over an in-memory pipe. */
export async function runTakeover(
  c: TakeoverCase,
  defer: Defer,
): Promise<string[]> {
  const expectation = expectFrames(c.frames.bytes, c.role, FUZZ_LIMITS);
  const [ours, theirs] = pipe();
  const connection = takeover(ours, {
    role: c.role,
    keepalive: false,
    closeTimeout: CLOSE_TIMEOUT,
    highWaterMark: c.highWaterMark,
    ...FUZZ_LIMITS,
  });
  defer(() => within(STEP, connection.closed).catch(() => {}));
  const app = runApplication(connection, c.mode);
  const raw = new RawEnd(theirs);
  defer(() => raw.close());
  await raw.write(c.frames.bytes, c.frames.cuts);
  await raw.end();
  return await observe(
    c.role,
    c.mode,
    expectation,
    connection,
    app,
    raw,
    0,
  );
}

/** Waits for the end of a connection and checks it against `expectation`. */
async function observe(
  role: "server" | "client",
  mode: AppMode,
  expectation: ReturnType<typeof expectFrames>,
  connection: WebSocketConnection,
  app: Promise<AppResult>,
  raw: RawEnd,
  outputStart: number,
): Promise<string[]> {
  const outputEnd = await raw.finished(STEP);
  let closed;
  let result;
  try {
    closed = await within(STEP, connection.closed);
  } catch {
    return [
      `closed did not settle within ${STEP} ms (state ${connection.info.state})`,
    ];
  }
  try {
    result = await within(STEP, app);
  } catch {
    return [`readable did not end within ${STEP} ms after closed settled`];
  }
  const problems = checkFrameRun({
    expectation,
    ourRole: role,
    mode,
    closed,
    app: result,
    output: raw.received().slice(outputStart),
    outputEnd,
  });
  if (outputEnd === null) {
    problems.push(`our side did not end the stream within ${STEP} ms`);
  }
  return problems;
}

/** A raw client's session with our server. */
export interface ServerSessionCase {
  /** The request bytes, the writes they are cut in, and whether the client then half-closes. */
  request: Uint8Array;
  requestCuts: number[];
  endAfterRequest: boolean;
  /** The frames sent after a 101. */
  frames: FrameStream;
}

/** The authority the fuzzer's requests name in `Host`: our server's name here. */
export const AUTHORITY = "wsstream.fuzz";

/** Runs a raw client's session against our server. */
export async function runServerSession(
  h: Harness,
  c: ServerSessionCase,
  defer: Defer,
): Promise<string[]> {
  const problems: string[] = [];
  closeStale(h);
  const verdict = judgeRequest(c.request, c.endAfterRequest, AUTHORITY);
  const why = verdict.reasons.join("; ") || "a valid request";
  const started = performance.now();
  const raw = new RawEnd(
    await h.network.connect({ hostname: HOST, port: h.serverPort }),
  );
  defer(() => raw.close());
  await raw.write(c.request, c.requestCuts);
  if (c.endAfterRequest) await raw.end();
  if (!(await raw.until(hasHead, HANDSHAKE_TIMEOUT + STEP))) {
    return [
      `no response head (stream ${
        raw.ended ?? "still open"
      } after ${raw.received().length} bytes) to ${why}`,
    ];
  }
  const end = headEnd(raw.received());
  const response = parseServerResponse(raw.received().slice(0, end));
  if (typeof response === "string") {
    return [`our server's response: ${response}`];
  }
  const { status, fields } = response;

  if (status === 101) {
    const accepted = await h.accepted.next(STEP);
    if (accepted === null) {
      return ["101 sent, but the handler never got the connection"];
    }
    defer(() => within(STEP, accepted.connection.closed).catch(() => {}));
    if (verdict.decision === "refuse") {
      // The rest would only show the consequences (the client half-closed).
      return [`101 to a request that must be refused (${why})`];
    }
    if (
      !fieldHasToken(fields, "upgrade", "websocket") ||
      !fieldHasToken(fields, "connection", "upgrade")
    ) {
      problems.push("101 without Upgrade: websocket and Connection: Upgrade");
    }
    if (verdict.key !== null) {
      const accept = fieldOf(fields, "sec-websocket-accept");
      if (accept !== (await acceptFor(verdict.key))) {
        problems.push(`wrong Sec-WebSocket-Accept ${accept}`);
      }
    }
    for (const name of ["sec-websocket-protocol", "sec-websocket-extensions"]) {
      if (fields.has(name)) {
        problems.push(`101 agrees to ${name}, which nothing asked for`);
      }
    }
    const expectation = expectFrames(
      concatAll([verdict.rest, c.frames.bytes]),
      "server",
      FUZZ_LIMITS,
    );
    await raw.write(c.frames.bytes, c.frames.cuts);
    await raw.end();
    problems.push(
      ...(await observe(
        "server",
        accepted.mode,
        expectation,
        accepted.connection,
        accepted.app,
        raw,
        end,
      )),
    );
    return problems;
  }

  if (status === 408 && late(started)) {
    // The deadline passed: 408 is right, whatever the request.
  } else if (verdict.decision === "accept") {
    problems.push(`refused with ${status} a request that must be accepted`);
  } else if (!verdict.statuses.has(status)) {
    problems.push(
      `refused with ${status}, expected ${
        [...verdict.statuses].join(" or ")
      } (${why})`,
    );
  }
  // RFC 9110 §15.5.6: a 405 MUST carry Allow; §15.5.22: a 426 MUST carry
  // Upgrade. RFC 6455 §4.4: a version refusal carries Sec-WebSocket-Version.
  if (status === 405 && !fieldHasToken(fields, "allow", "get")) {
    problems.push("405 without Allow: GET");
  }
  if (status === 426 && !fieldHasToken(fields, "upgrade", "websocket")) {
    problems.push("426 without Upgrade: websocket");
  }
  if (
    verdict.reasons.length === 1 && verdict.reasons[0] === VERSION_MISMATCH &&
    !fieldHasToken(fields, "sec-websocket-version", "13")
  ) {
    problems.push(
      `${status} for the version without Sec-WebSocket-Version: 13`,
    );
  }
  if (!fieldHasToken(fields, "connection", "close")) {
    problems.push(`${status} without Connection: close`);
  }
  const ended = await raw.finished(STEP);
  if (ended === null) {
    problems.push(`our server kept the connection open after ${status}`);
  }
  const body = raw.received().length - end;
  const length = fieldOf(fields, "content-length");
  if (ended === "eof" && length !== String(body)) {
    problems.push(`Content-Length ${length} for a body of ${body} bytes`);
  }
  return problems;
}

/** Our client's session with a raw server. */
export interface ClientSessionCase {
  /** The request path (and query). */
  path: string;
  /** The server's response for an accept value (what follows the head is frames). */
  response: (accept: string) => Uint8Array;
  /** Where the writes of response and frames together are cut. */
  cuts: number[];
  /** Whether the raw server ends its side after writing. */
  endAfter: boolean;
  /** The frames sent right after the response, in the same writes. */
  frames: FrameStream;
  mode: AppMode;
  highWaterMark: number;
}

type Outcome =
  | { ok: true; connection: WebSocketConnection }
  | { ok: false; error: unknown };

/** Runs our client against a raw server. */
export async function runClientSession(
  h: Harness,
  c: ClientSessionCase,
  defer: Defer,
): Promise<string[]> {
  const problems: string[] = [];
  closeStale(h);
  const started = performance.now();
  const outcome: Promise<Outcome> = connect(
    h.rawUrl(c.path),
    h.clientOptions(c.highWaterMark),
  ).then(
    (connection) => {
      h.track(connection.closed);
      return { ok: true, connection };
    },
    (error) => ({ ok: false, error }),
  );
  defer(async () => {
    const settled = await within(STEP, outcome).catch(() => null);
    if (settled?.ok) {
      settled.connection.close().catch(() => {});
      await within(STEP, settled.connection.closed).catch(() => {});
    }
  });
  const transport = await h.incoming.next(STEP);
  if (transport === null) return ["our client never connected"];
  const raw = new RawEnd(transport);
  defer(() => raw.close());

  // Our client's request must be flawless.
  if (!(await raw.until(hasHead, STEP))) {
    return ["our client sent no request head"];
  }
  const requestEnd = headEnd(raw.received());
  const request = judgeRequest(
    raw.received().slice(0, requestEnd),
    false,
    h.rawAuthority,
  );
  if (request.decision !== "accept" || request.key === null) {
    problems.push(`our client's request: ${request.reasons.join("; ")}`);
    return problems;
  }
  const accept = await acceptFor(request.key);
  const response = c.response(accept);
  const all = concatAll([response, c.frames.bytes]);
  const verdict = judgeResponse(all, c.endAfter, accept);
  const why = verdict.reasons.join("; ") || "a valid response";
  await raw.write(all, c.cuts);
  if (c.endAfter) await raw.end();

  let settled: Outcome;
  try {
    settled = await within(HANDSHAKE_TIMEOUT + STEP, outcome);
  } catch {
    return [
      `connect() did not settle within ${HANDSHAKE_TIMEOUT + STEP} ms (${why})`,
    ];
  }
  if (settled.ok) {
    if (verdict.decision === "refuse") {
      problems.push(`connect() accepted a response it must refuse (${why})`);
      return problems;
    }
    const connection = settled.connection;
    const app = runApplication(connection, c.mode);
    const expectation = expectFrames(verdict.rest, "client", FUZZ_LIMITS);
    problems.push(
      ...(await observe(
        "client",
        c.mode,
        expectation,
        connection,
        app,
        raw,
        requestEnd,
      )),
    );
    return problems;
  }
  const error = settled.error;
  if (error instanceof TimeoutError && late(started)) {
    // The deadline passed: giving up is right, whatever the response.
  } else if (verdict.decision === "accept") {
    problems.push(
      `connect() refused a response it must accept: ${describe(error)}`,
    );
  } else if (error instanceof TimeoutError) {
    if (!verdict.timeout) problems.push(`connect() timed out on ${why}`);
  } else if (!(error instanceof HandshakeError)) {
    problems.push(
      `connect() rejected with ${describe(error)}, not a HandshakeError`,
    );
  } else if (!verdict.statuses.has(error.status)) {
    problems.push(
      `connect() rejected with status ${error.status}, expected ${
        [...verdict.statuses].join(" or ")
      } (${why})`,
    );
  }
  // Refused, our client must let go of the connection.
  if ((await raw.finished(STEP)) === null) {
    problems.push("connect() rejected but left the connection open");
  }
  return problems;
}

/** Whether the handshake deadline has passed since `started`, by the case's clock. */
function late(started: number): boolean {
  return performance.now() - started >= HANDSHAKE_TIMEOUT;
}

/**
 * Closes what an earlier case left in the queues (one that overran its
 * deadline), so that this case gets its own connection.
 */
function closeStale(h: Harness): void {
  for (const stale of h.accepted.drain()) {
    stale.connection.close().catch(() => {});
  }
  for (const stale of h.incoming.drain()) stale.close();
}

function describe(error: unknown): string {
  return error instanceof Error
    ? `${error.name}: ${error.message}`
    : String(error);
}
