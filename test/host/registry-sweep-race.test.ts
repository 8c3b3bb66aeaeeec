import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentTypeSpecSchema, RegisterWorkerRequestSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import { DEFAULT_INFRASTRUCTURE, ensureBuckets } from "../../src/host/infrastructure.js";
import { Registry } from "../../src/host/registry.js";
import { subjects, TestSystem } from "../helpers/system.js";

const spec = (type: string) => create(AgentTypeSpecSchema, { type, description: type, subscriptions: [type], routable: true });
const request = (workerId: string, type: string) => create(RegisterWorkerRequestSchema, { workerId, hostname: "here", pid: 1, agentTypes: [spec(type)] });

/**
 * Sweeps run while workers join and heartbeat, in every interleaving the event loop produces:
 * a worker that heartbeats must never end up expired or missing from its agent type.
 */
describe("the registry sweep racing joins and heartbeats", () => {
  let sys: TestSystem;
  let registry: Registry;
  const ttlMs = 400;

  beforeAll(async () => {
    sys = await TestSystem.start();
    const nc = await sys.connect();
    const jsm = await jetstreamManager(nc);
    const buckets = await ensureBuckets(nc, jsm, subjects, DEFAULT_INFRASTRUCTURE);
    registry = new Registry(jsm, subjects, buckets.agents, buckets.workers, ttlMs, sys.logger);
  });
  afterAll(async () => {
    await sys.close();
  });

  it("never removes a heartbeating worker from its agent type, over many rounds", async () => {
    const rounds = 60;
    for (let round = 0; round < rounds; round++) {
      const type = `t${round % 3}`;
      const worker = `w-${round}`;
      // A sweep or two already under way when the worker joins, and more while it heartbeats.
      const sweeps = [registry.sweep(), registry.sweep()];
      await registry.register(request(worker, type));
      sweeps.push(registry.sweep());
      expect(await registry.heartbeat(worker)).toBe(true);
      sweeps.push(registry.sweep());
      await Promise.all([registry.heartbeat(worker), registry.sweep()]);
      await Promise.all(sweeps);
      const agent = (await registry.listAgents()).find((a) => a.spec?.type === type);
      expect(agent?.workerIds, `round ${round}`).toContain(worker);
      expect(agent?.available, `round ${round}`).toBe(true);
      expect((await registry.listWorkers()).map((w) => w.workerId), `round ${round}`).toContain(worker);
      await registry.deregister(worker);
    }
  }, 120_000);

  it("still expires a worker that stopped heartbeating", async () => {
    await registry.register(request("w-silent", "quiet"));
    await new Promise((r) => setTimeout(r, ttlMs + 100));
    await registry.sweep();
    expect((await registry.listWorkers()).map((w) => w.workerId)).not.toContain("w-silent");
    const agent = (await registry.listAgents()).find((a) => a.spec?.type === "quiet");
    expect(agent).toMatchObject({ workerIds: [], available: false });
  });
});
