import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TaskAgentStateSchema as TurnStateSchema } from "../../src/gen/switchboard/v1/agents_pb.js";
import { KvAgentState } from "../../src/worker/agent-state.js";
import { TestNatsServer } from "../helpers/nats-server.js";

describe("agent state in a bucket that is briefly unavailable", () => {
  let server: TestNatsServer;
  let nc: NatsConnection;
  beforeEach(async () => {
    server = await TestNatsServer.start();
    nc = await server.connect();
  });
  afterEach(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("keeps trying a write while nothing stores the bucket's subjects (as during a leader election), then writes it once", async () => {
    const kvm = new Kvm(nc);
    const kv = await kvm.create("state_test", { history: 1 });
    const state = new KvAgentState(kv, "alice.s1");
    await state.update(TurnStateSchema, () => create(TurnStateSchema, { turns: 1, lastTurnId: "t1" }));
    // The bucket's stream goes away: writes get "no responders", as while a replicated bucket
    // elects a leader. It comes back a second later.
    const jsm = await jetstreamManager(nc);
    const config = (await jsm.streams.info("KV_state_test")).config;
    await jsm.streams.delete("KV_state_test");
    const writing = state.update(TurnStateSchema, (current) => create(TurnStateSchema, { turns: (current?.turns ?? 0) + 1, lastTurnId: "t2" }));
    await new Promise((r) => setTimeout(r, 1_000));
    await jsm.streams.add(config);
    const written = await writing;
    // The recreated bucket is empty: the cached revision conflicts, the state is read again.
    expect(written?.turns).toBe(1);
    const stored = await (await kvm.open("state_test")).get("alice.s1");
    expect(stored?.revision).toBe(1);
  });

  it("gives up at once when the worker gives up on its in-flight work", async () => {
    const kv = await new Kvm(nc).create("state_abort", { history: 1 });
    const lifetime = new AbortController();
    const state = new KvAgentState(kv, "bob.s1", lifetime.signal);
    await state.update(TurnStateSchema, () => create(TurnStateSchema, { turns: 1, lastTurnId: "t1" }));
    await (await jetstreamManager(nc)).streams.delete("KV_state_abort");
    lifetime.abort();
    const started = Date.now();
    await expect(state.update(TurnStateSchema, () => create(TurnStateSchema, { turns: 2, lastTurnId: "t2" }))).rejects.toThrow(/jetstream is not enabled|no responders/i);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
