import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentTypeSpecSchema, RegisterWorkerRequestSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import { DEFAULT_INFRASTRUCTURE, ensureBuckets } from "../../src/host/infrastructure.js";
import { Registry } from "../../src/host/registry.js";
import { TaskAgentType } from "../../src/agents/task-agent.js";
import { runCliToEnd } from "../helpers/cli.js";
import { subjects, TestSystem, withHostedSystem } from "../helpers/system.js";

const request = (workerId: string, description: string) =>
  create(RegisterWorkerRequestSchema, { workerId, hostname: "here", pid: 1, agentTypes: [create(AgentTypeSpecSchema, { type: "hr", description, subscriptions: ["hr"], routable: true })] });

describe("two definitions of one agent type", () => {
  let sys: TestSystem;
  let registry: Registry;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    sys = await TestSystem.start();
    const nc = await sys.connect();
    const jsm = await jetstreamManager(nc);
    const buckets = await ensureBuckets(nc, jsm, subjects, DEFAULT_INFRASTRUCTURE);
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    registry = new Registry(jsm, subjects, buckets.agents, buckets.workers, 10_000, pino({ level: "info" }, sink));
  });
  afterAll(async () => {
    await sys.close();
  });

  it("warns when a worker registers another definition while other workers still serve the type", async () => {
    await registry.register(request("w-echo", "Human resources (echo)"));
    await registry.register(request("w-echo2", "Human resources (echo)"));
    expect(lines.filter((l) => l["event"] === "agent.definition_conflict")).toEqual([]);

    await registry.register(request("w-model", "Human resources, answered by a model"));
    expect(lines.filter((l) => l["event"] === "agent.definition_conflict")).toEqual([
      expect.objectContaining({ level: 40, agentType: "hr", workerId: "w-model", otherWorkerIds: ["w-echo", "w-echo2"] }),
    ]);

    // Alone with the type, a worker that changes its definition is an update, not a conflict.
    for (const id of ["w-echo", "w-echo2", "w-model"]) await registry.deregister(id);
    await registry.register(request("w-model", "Human resources, answered by a model"));
    await registry.register(request("w-model", "Human resources v2"));
    expect(lines.filter((l) => l["event"] === "agent.definition_conflict")).toHaveLength(1);
    expect(lines.filter((l) => l["event"] === "agent.updated").length).toBeGreaterThan(0);
  });

  it("goes back to a remaining worker's definition when the worker whose definition it shows leaves", async () => {
    await registry.deregister("w-model");
    await registry.register(request("w-real", "Human resources: leave and pay"));
    await registry.register(request("w-impostor", "Gardening and plants"));
    expect((await registry.listAgents()).find((a) => a.spec?.type === "hr")?.spec?.description).toBe("Gardening and plants");
    await registry.deregister("w-impostor");
    const hr = (await registry.listAgents()).find((a) => a.spec?.type === "hr");
    expect(hr).toMatchObject({ workerIds: ["w-real"], available: true });
    expect(hr?.spec?.description).toBe("Human resources: leave and pay");
    // And when the one that leaves is not the one shown, the definition stays.
    await registry.register(request("w-second", "Human resources: leave and pay"));
    await registry.deregister("w-real");
    expect((await registry.listAgents()).find((a) => a.spec?.type === "hr")?.spec?.description).toBe("Human resources: leave and pay");
    await registry.deregister("w-second");
  });
});

describe("admin agents with two definitions of one type", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("says how many definitions the workers of a type registered", async () => {
    const desk = (description: string) => new TaskAgentType({ type: "desk", description, keywords: ["desk"], examples: [] });
    await sys.startWorker([desk("Supplier invoices and payments.")]);
    await sys.startWorker([desk("Gardening and plants.")]);
    const listed = await runCliToEnd(["admin", "agents", "--nats", sys.url]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^desk\s+yes\s+2 \(2 definitions\)\s+yes/m);
  });
});
