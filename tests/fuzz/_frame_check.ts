/**
 * The application the fuzzer runs on our endpoint, and the check of one run
 * against the oracle's expectation: the messages delivered, the frames our
 * side sent (pongs, echoes, the close frame), and how `closed` settled.
 *
 * @module
 */
import {
  type CloseInfo,
  ConnectionClosedError,
  type Message as WsMessage,
  ProtocolError,
  type WebSocketConnection,
  WebSocketError,
} from "../../mod.ts";
import { concatAll, toHex } from "../_frames.ts";
import type { AppMode } from "./_frame_cases.ts";
import {
  type Ending,
  type Expectation,
  isSendableCloseCode,
  type Message,
} from "./_frame_oracle.ts";
import type { StreamEnd } from "./_raw_end.ts";
import { decodeUtf8Strict } from "./_utf8.ts";
import { OP, readFrames } from "./_wire.ts";

/** What the application saw. */
export interface AppResult {
  /** Every message read, in order. */
  messages: WsMessage[];
  /** What `readable` errored with, or `null` when it closed. */
  error: unknown;
  /** Errors from sending echoes (only ever wsstream's own). */
  sendErrors: unknown[];
}

/** Reads every message; sends each back (`echo`), or waits a timer turn after each (`slow`). */
export async function runApplication(
  connection: WebSocketConnection,
  mode: AppMode,
): Promise<AppResult> {
  const result: AppResult = { messages: [], error: null, sendErrors: [] };
  const reader = connection.readable.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      result.messages.push(value);
      if (mode === "echo") {
        try {
          await connection.send(value);
        } catch (error) {
          result.sendErrors.push(error);
        }
      } else if (mode === "slow") {
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
  } catch (error) {
    result.error = error;
  }
  return result;
}

/** One run of a frame stream through our endpoint, as observed. */
export interface FrameRun {
  expectation: Expectation;
  ourRole: "server" | "client";
  mode: AppMode;
  closed: CloseInfo;
  app: AppResult;
  /** Every byte our side sent after the handshake. */
  output: Uint8Array;
  /** How the stream from our side ended (`null`: it did not). */
  outputEnd: StreamEnd | null;
}

/** Everything wrong with a run; empty when it went as the RFC says. */
export function checkFrameRun(run: FrameRun): string[] {
  const problems: string[] = [];
  const { expectation: e, closed, app } = run;
  let ending: Ending = e.ending;
  if (ending.kind === "fail-or-eof") {
    ending = closed.closeCode === 1006
      ? { kind: "eof" }
      : { kind: "fail", codes: ending.codes, why: ending.why };
  }

  // How `closed` settled.
  const got = `closed ${JSON.stringify(closed)}`;
  if (ending.kind === "fail") {
    if (!ending.codes.includes(closed.closeCode) || closed.wasClean) {
      problems.push(
        `${got}; expected a failure with ${
          ending.codes.join(" or ")
        } (${ending.why})`,
      );
    }
  } else if (ending.kind === "close") {
    if (
      closed.closeCode !== ending.code || closed.reason !== ending.reason ||
      !closed.wasClean
    ) {
      problems.push(
        `${got}; expected the peer's clean close ${ending.code} ${
          JSON.stringify(ending.reason)
        }`,
      );
    }
  } else if (closed.closeCode !== 1006 || closed.wasClean) {
    problems.push(`${got}; expected 1006 (the stream ended without a close)`);
  }

  // The messages delivered: all of them and no others, except that an
  // abnormal end (1006) errors `readable`, dropping what was still queued.
  const delivered = app.messages;
  const exact = ending.kind !== "eof";
  const mismatch = compareMessages(delivered, e.messages, exact);
  if (mismatch !== null) problems.push(`messages delivered: ${mismatch}`);

  // What `readable` ended with.
  if (ending.kind === "close") {
    if (app.error !== null) {
      problems.push(
        `readable errored after a clean close: ${describe(app.error)}`,
      );
    }
  } else if (
    ending.kind === "fail" &&
    !(app.error instanceof ConnectionClosedError &&
      app.error.cause instanceof ProtocolError &&
      app.error.closeCode === app.error.cause.closeCode)
  ) {
    problems.push(
      `readable ended with ${
        describe(app.error)
      }, not a ConnectionClosedError caused by the ProtocolError`,
    );
  } else if (!(app.error instanceof WebSocketError)) {
    problems.push(
      `readable ended with ${describe(app.error)}, not a WebSocketError`,
    );
  }
  for (const error of app.sendErrors) {
    if (!(error instanceof WebSocketError)) {
      problems.push(`send failed with ${describe(error)}`);
    }
  }

  // What our side sent: pongs owed, echoes of what was delivered, and one
  // close frame last. After a reset the tail may be lost.
  const cut = run.outputEnd !== "eof";
  const out = readFrames(run.output, run.ourRole === "client");
  if (out.error !== null) {
    problems.push(`we sent an invalid frame: ${out.error}`);
  }
  if (out.truncated && !cut && ending.kind !== "eof") {
    problems.push("our output ends inside a frame");
  }
  let pongs = 0;
  let echoes = 0;
  let close: Uint8Array | null = null;
  let echo: { opcode: number; parts: Uint8Array[] } | null = null;
  for (const f of out.frames) {
    if (close !== null) {
      problems.push(`we sent opcode ${f.opcode} after our close frame`);
      break;
    }
    if (f.opcode === OP.pong) {
      const want = e.pongs[pongs++];
      if (want === undefined || toHex(want) !== toHex(f.payload)) {
        problems.push(
          `pong ${pongs} carries [${toHex(f.payload)}], expected ${
            want === undefined ? "no pong" : `[${toHex(want)}]`
          }`,
        );
      }
    } else if (f.opcode === OP.ping) {
      problems.push("we sent a ping (keepalive is off)");
    } else if (f.opcode === OP.close) {
      close = f.payload;
    } else {
      if (run.mode !== "echo") {
        problems.push("we sent a data frame, but the application never sends");
        break;
      }
      if ((f.opcode === OP.continuation) !== (echo !== null)) {
        problems.push("our data frames are out of order");
        break;
      }
      echo ??= { opcode: f.opcode, parts: [] };
      echo.parts.push(f.payload);
      if (f.fin) {
        const bytes = concatAll(echo.parts);
        const message: Message | null = echo.opcode === OP.text
          ? decodeUtf8Strict(bytes)
          : bytes;
        const want = delivered[echoes++];
        if (message === null) {
          problems.push("we sent a text message that is not UTF-8");
        } else if (want === undefined || !sameMessage(message, want)) {
          problems.push(`echo ${echoes} differs from the message delivered`);
        }
        echo = null;
      }
    }
  }
  if (!cut && ending.kind !== "eof" && pongs < e.pongs.length) {
    problems.push(`we sent ${pongs} of ${e.pongs.length} pongs owed`);
  }
  if (close !== null) {
    const code = close.length >= 2 ? (close[0]! << 8) | close[1]! : 1005;
    if (
      close.length === 1 || (close.length >= 2 && !isSendableCloseCode(code))
    ) {
      problems.push(`our close frame is invalid: [${toHex(close)}]`);
    } else if (decodeUtf8Strict(close.subarray(2)) === null) {
      problems.push("our close reason is not UTF-8");
    }
    if (ending.kind === "eof") {
      problems.push(`we sent a close frame (${code}) after the stream ended`);
    } else if (ending.kind === "fail" && code !== closed.closeCode) {
      problems.push(
        `we sent close code ${code} but report ${closed.closeCode}`,
      );
    } else if (ending.kind === "close" && code !== ending.code) {
      problems.push(
        `we echoed close code ${code}, not the peer's ${ending.code}`,
      );
    }
  } else if (!cut && ending.kind !== "eof") {
    problems.push("we sent no close frame");
  }
  return problems;
}

function sameMessage(a: Message, b: Message): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  return a.length === b.length && toHex(a) === toHex(b);
}

/** `null` when `got` is `want` (or, unless `exact`, a prefix of it). */
function compareMessages(
  got: readonly Message[],
  want: readonly Message[],
  exact: boolean,
): string | null {
  if (got.length > want.length || (exact && got.length !== want.length)) {
    return `${got.length} messages, expected ${
      exact ? "" : "at most "
    }${want.length}`;
  }
  for (let i = 0; i < got.length; i++) {
    if (!sameMessage(got[i]!, want[i]!)) {
      return `message ${i + 1} is ${summary(got[i]!)}, expected ${
        summary(want[i]!)
      }`;
    }
  }
  return null;
}

function summary(message: Message): string {
  if (typeof message === "string") {
    return `text of ${message.length} chars ${
      JSON.stringify(message.slice(0, 40))
    }`;
  }
  return `binary of ${message.length} bytes [${
    toHex(message.subarray(0, 24))
  }]`;
}

function describe(error: unknown): string {
  if (error === null) return "nothing";
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
