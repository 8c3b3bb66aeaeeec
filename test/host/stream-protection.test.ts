import { Writable } from "node:stream";
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Host } from "../../src/host/host.js";
import { StreamWatch } from "../../src/host/stream-watch.js";
import { subjects, TestSystem, testLogger } from "../helpers/system.js";

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: "info" }, sink), lines };
}

describe("the stream and buckets refuse purges and deletes", () => {
  let sys: TestSystem;

  beforeEach(async () => {
    sys = await TestSystem.start();
  });

  afterEach(async () => {
    await sys.close();
  });

  it("a host protects an existing stream and the buckets, and the protections hold against anyone", async () => {
    const nc = await sys.connect("setup");
    const jsm = await jetstreamManager(nc);
    // A stream made by an earlier version, without the protections: the host adds them.
    await jsm.streams.add({ name: subjects.eventStream, subjects: [subjects.allTopics], retention: RetentionPolicy.Limits, storage: StorageType.File, allow_direct: true });
    await jetstream(nc).publish("sb.topic.default.alice.s1", new Uint8Array(1));
    const host = new Host({ nc: await sys.connect("host"), subjects, logger: testLogger(), heartbeatIntervalMs: 500, workerTtlMs: 5_000 });
    await host.start();
    try {
      const events = (await jsm.streams.info(subjects.eventStream)).config;
      expect(events).toMatchObject({ deny_purge: true, deny_delete: true });
      expect((await jsm.streams.info(subjects.deadLetterStream)).config).toMatchObject({ deny_purge: true });
      for (const bucket of [subjects.agentsBucket, subjects.workersBucket, subjects.sessionsBucket, subjects.agentStateBucket]) {
        expect((await jsm.streams.info(`KV_${bucket}`)).config, bucket).toMatchObject({ deny_purge: true, deny_delete: true, allow_rollup_hdrs: false });
        await expect(jsm.streams.purge(`KV_${bucket}`)).rejects.toThrow(/purge/i);
      }
      // Not even a client without any permission limits can purge events or delete one.
      await expect(jsm.streams.purge(subjects.eventStream)).rejects.toThrow(/purge/i);
      await expect(jsm.streams.deleteMessage(subjects.eventStream, 1)).rejects.toThrow(/delete/i);
      expect((await jsm.streams.info(subjects.eventStream)).state).toMatchObject({ first_seq: 1, messages: 1 });
    } finally {
      await host.close();
    }
  });

  it("a first sequence that jumps past messages too young to expire is logged; aging out is not", async () => {
    const nc = await sys.connect("watch");
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: "WATCHED", subjects: ["watched.>"], storage: StorageType.Memory });
    for (let i = 0; i < 5; i++) await js.publish("watched.a", new Uint8Array(1));
    const { logger, lines } = capturingLogger();
    const watch = new StreamWatch(jsm, { stream: "WATCHED", maxAgeMs: 3_600_000, intervalMs: 60_000 }, logger);
    await watch.start();
    try {
      await js.publish("watched.a", new Uint8Array(1));
      await watch.check();
      expect(lines.filter((l) => l["event"] === "stream.first_seq_jumped")).toEqual([]);
      await jsm.streams.purge("WATCHED", { keep: 2 });
      await watch.check();
      expect(lines.filter((l) => l["event"] === "stream.first_seq_jumped")).toEqual([expect.objectContaining({ stream: "WATCHED", fromSeq: 1, toSeq: 5, lost: 4, level: 40 })]);
      // Messages older than max age may go: an hour later, the same jump is expected.
      await jsm.streams.purge("WATCHED", { keep: 1 });
      await watch.check(Date.now() + 2 * 3_600_000);
      expect(lines.filter((l) => l["event"] === "stream.first_seq_jumped")).toHaveLength(1);
    } finally {
      await watch.close();
    }
  });
});
