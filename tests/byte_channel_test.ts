/**
 * The byte channel interface as `channelOf` fills it over streams (what
 * `takeover` of any byte stream runs on: src/stream_channel.ts), and
 * `ChannelTransport`'s streams over a channel (src/channel_transport.ts).
 * The runtimes' own channels are tested over real sockets in
 * transports_test.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ChannelReader } from "../src/byte_channel.ts";
import { ChannelTransport } from "../src/channel_transport.ts";
import { channelOf } from "../src/stream_channel.ts";
import { within } from "./_wait.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

describe("channelOf over a readable/writable pair", () => {
  test("is made once per stream and read and written in order", async () => {
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const channel = channelOf(pipe);
    assert.equal(channelOf(pipe), channel, "the same locks, the same channel");
    channel.write(bytes(1, 2));
    channel.write(bytes(3));
    assert.deepEqual(await within(1_000, channel.read()), bytes(1, 2));
    assert.deepEqual(await within(1_000, channel.read()), bytes(3));
    await within(1_000, channel.drained());
    assert.equal(channel.bufferedAmount, 0);
    channel.close();
  });

  test("uses a stream's own channel when it has one", () => {
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const inner = channelOf(pipe);
    const transport = new ChannelTransport(inner);
    assert.equal(channelOf(transport), inner);
    inner.close();
  });

  test("bufferedAmount counts writes the stream has not taken", async () => {
    // A writable that takes one chunk when told to.
    const taken: Uint8Array[] = [];
    let release = () => {};
    const writable = new WritableStream<Uint8Array>({
      write: (chunk) =>
        new Promise<void>((resolve) => {
          release = () => {
            taken.push(chunk);
            resolve();
          };
        }),
    });
    const channel = channelOf({ readable: new ReadableStream(), writable });
    channel.write(bytes(1, 2, 3));
    channel.write(bytes(4));
    assert.equal(channel.bufferedAmount, 4);
    let drained = false;
    const draining = channel.drained().then(() => (drained = true));
    await new Promise((resolve) => setTimeout(resolve, 5));
    release();
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(channel.bufferedAmount, 1);
    assert.equal(drained, false);
    release();
    await within(1_000, draining);
    assert.equal(channel.bufferedAmount, 0);
    assert.deepEqual(taken, [bytes(1, 2, 3), bytes(4)]);
    channel.close();
  });

  test("a failed write is reported once, and later writes throw it", async () => {
    const failure = new Error("the peer is gone");
    const writable = new WritableStream<Uint8Array>({
      write: () => Promise.reject(failure),
    });
    let closed = 0;
    const channel = channelOf({
      readable: new ReadableStream(),
      writable,
      close: () => closed++,
    });
    const reported: unknown[] = [];
    channel.tellWriteFailures({ writeFailed: (error) => reported.push(error) });
    channel.write(bytes(1));
    await assert.rejects(within(1_000, channel.drained()), failure);
    assert.deepEqual(reported, [failure]);
    assert.throws(() => channel.write(bytes(2)), failure);
    assert.equal(closed, 1, "a failed stream is closed");
  });

  test("readTo tells a reader (never before it returns) the bytes, then the end", async () => {
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const channel = channelOf(pipe);
    /** One readTo, as a promise, checking it was not told synchronously. */
    const readOnce = () => {
      const told = Promise.withResolvers<Uint8Array | null>();
      let returned = false;
      const reader: ChannelReader = {
        received: (bytes) => {
          assert.ok(returned, "told before readTo returned");
          told.resolve(bytes);
        },
        failed: told.reject,
      };
      channel.readTo(reader);
      returned = true;
      return within(1_000, told.promise);
    };
    channel.write(bytes(1, 2));
    assert.deepEqual(await readOnce(), bytes(1, 2));
    const pending = readOnce(); // waiting when the bytes come
    channel.write(bytes(3));
    assert.deepEqual(await pending, bytes(3));
    await channel.closeWrite();
    assert.equal(await readOnce(), null);
    channel.close();
    assert.equal(await readOnce(), null, "and again, once closed");
  });

  test("readTo tells a reader the stream's error", async () => {
    const failure = new Error("reset");
    const channel = channelOf({
      readable: new ReadableStream({ pull: (c) => c.error(failure) }),
      writable: new WritableStream(),
    });
    const told = Promise.withResolvers<unknown>();
    channel.readTo({
      received: () => told.reject(new Error("told received")),
      failed: told.resolve,
    });
    assert.equal(await within(1_000, told.promise), failure);
    channel.close();
  });

  test("handedOff is never true: the stream may still hold the bytes", async () => {
    // The very buffer written comes out of a TransformStream's readable.
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const channel = channelOf(pipe);
    const written = bytes(1, 2, 3);
    channel.write(written);
    assert.equal(channel.handedOff, false);
    const read = await within(1_000, channel.read());
    await within(1_000, channel.drained());
    assert.equal(channel.bufferedAmount, 0);
    assert.equal(read, written, "not a copy: the writer must not reuse it");
    assert.equal(channel.handedOff, false);
    channel.close();
    assert.equal(channel.handedOff, false);
  });

  test("close() ends reading, cancels the readable and closes the source", async () => {
    let cancelled = false;
    let closed = false;
    const channel = channelOf({
      readable: new ReadableStream({ cancel: () => void (cancelled = true) }),
      writable: new WritableStream(),
      close: () => void (closed = true),
    });
    const pending = channel.read();
    channel.close();
    assert.equal(await within(1_000, pending), null);
    assert.ok(cancelled && closed);
    assert.throws(() => channel.write(bytes(1)), /closed/);
  });
});

describe("ChannelTransport", () => {
  test("makes its streams on first use, over the channel", async () => {
    const pipe = new TransformStream<Uint8Array, Uint8Array>();
    const transport = new ChannelTransport(channelOf(pipe));
    const writer = transport.writable.getWriter();
    const reader = transport.readable.getReader();
    assert.equal(transport.readable, transport.readable);
    // The pipe takes a write once the other end reads it.
    const written = writer.write(bytes(7, 8));
    assert.deepEqual((await within(1_000, reader.read())).value, bytes(7, 8));
    await within(1_000, written);
    reader.releaseLock();
    writer.releaseLock();
    transport.close();
  });
});
