import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AgentTypeSpecSchema, RegisterWorkerRequestSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import { HostClient } from "../../src/host/client.js";
import { runCli } from "../helpers/cli.js";
import { ProbeAgentType } from "../helpers/probe-agent.js";
import { eventually, subjects, TestSystem } from "../helpers/system.js";

const spec = (type: string) => create(AgentTypeSpecSchema, { type, description: type, subscriptions: [type], routable: true, keywords: [type] });

describe("host registry on a real nats-server", () => {
  let sys: TestSystem;
  beforeEach(async () => {
    sys = await TestSystem.start();
  });
  afterEach(async () => {
    await sys.close();
  });

  it("lists registered agent types and workers, and drops them when a worker deregisters", async () => {
    await sys.startHost();
    const worker = await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    const admin = await sys.hostClient();
    const agents = await admin.agents();
    expect(agents.map((a) => a.spec?.type)).toEqual(["finance", "hr", "router", "user_proxy"]);
    expect(agents.every((a) => a.available && a.workerIds[0] === worker.id)).toBe(true);
    expect(agents.find((a) => a.spec?.type === "finance")?.spec?.keywords).toEqual(["finance", "money", "budget"]);
    const workers = await admin.workers();
    expect(workers).toHaveLength(1);
    expect(workers[0]).toMatchObject({ workerId: worker.id, pid: process.pid, agentTypes: ["router", "user_proxy", "hr", "finance"] });

    await worker.close();
    expect(await admin.workers()).toHaveLength(0);
    expect((await admin.agents()).every((a) => !a.available && a.workerIds.length === 0)).toBe(true);
  });

  it("expires a worker that stops heartbeating and marks its agent types unavailable", async () => {
    await sys.startHost({ workerTtlMs: 800, heartbeatIntervalMs: 200 });
    const admin = await sys.hostClient();
    // A worker that registers and then goes silent, as a killed process would.
    await admin.register(create(RegisterWorkerRequestSchema, { workerId: "w-silent", hostname: "elsewhere", pid: 1, agentTypes: [spec("legal")] }));
    const live = await sys.startWorker([new ProbeAgentType("legal")]);
    expect((await admin.agents())[0]?.workerIds.sort()).toEqual([live.id, "w-silent"].sort());

    await eventually(async () => (await admin.workers()).every((w) => w.workerId !== "w-silent"), 5_000, "silent worker expired");
    const legal = (await admin.agents())[0];
    expect(legal?.workerIds).toEqual([live.id]);
    expect(legal?.available).toBe(true);
    // The live worker keeps heartbeating and stays registered.
    await new Promise((r) => setTimeout(r, 1_200));
    expect((await admin.workers()).map((w) => w.workerId)).toEqual([live.id]);

    await admin.register(create(RegisterWorkerRequestSchema, { workerId: "w-only", hostname: "x", pid: 2, agentTypes: [spec("travel")] }));
    await eventually(async () => (await admin.agents()).find((a) => a.spec?.type === "travel")?.available === false, 5_000, "travel unavailable");
  });

  it("does not expire live workers for the time the host itself could not listen", async () => {
    await sys.startHost({ workerTtlMs: 800, heartbeatIntervalMs: 200 });
    // The worker runs in its own process, so it keeps heartbeating while this one is stalled.
    const worker = runCli(["worker", "--agents", "finance", "--id", "w-steady"], { NATS_URL: sys.url });
    try {
      const admin = await sys.hostClient();
      await eventually(async () => (await admin.agents()).find((a) => a.spec?.type === "finance")?.available === true, 15_000, "finance available");
      // Block this process (and the host in it) for longer than the TTL, as CPU starvation would.
      const until = Date.now() + 1_500;
      while (Date.now() < until) {
        // busy: no timer, no socket read
      }
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 150));
        expect((await admin.workers()).map((w) => w.workerId)).toEqual(["w-steady"]);
        expect((await admin.agents()).find((a) => a.spec?.type === "finance")?.workerIds).toEqual(["w-steady"]);
      }
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  });

  it("tells a worker the host no longer knows that it must register again, and it does", async () => {
    await sys.startHost({ workerTtlMs: 1_500, heartbeatIntervalMs: 200 });
    const admin = await sys.hostClient();
    const worker = await sys.startWorker([new ProbeAgentType("ops")]);
    expect(await admin.heartbeat("w-unknown")).toBe(false);
    // Simulate an expiry the worker did not see.
    await admin.deregister(worker.id);
    await eventually(async () => (await admin.workers()).some((w) => w.workerId === worker.id), 5_000, "re-registration");
    expect((await admin.agents())[0]?.available).toBe(true);
  });

  it("stays consistent with two hosts serving registrations at once", async () => {
    await sys.startHost();
    await sys.startHost();
    const clients = await Promise.all([0, 1, 2, 3].map(async () => new HostClient(await sys.connect(), subjects)));
    await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        clients[i % clients.length]!.register(create(RegisterWorkerRequestSchema, { workerId: `w${i}`, hostname: "h", pid: i, agentTypes: [spec("shared"), spec(`own${i % 3}`)] })),
      ),
    );
    const admin = await sys.hostClient();
    const agents = await admin.agents();
    expect(agents.find((a) => a.spec?.type === "shared")?.workerIds).toHaveLength(24);
    for (let k = 0; k < 3; k++) expect(agents.find((a) => a.spec?.type === `own${k}`)?.workerIds).toHaveLength(8);
    expect(await admin.workers()).toHaveLength(24);
  });

  it("rejects registrations with ids that are not subject-safe", async () => {
    await sys.startHost();
    const admin = await sys.hostClient();
    await expect(admin.register(create(RegisterWorkerRequestSchema, { workerId: "w.1", agentTypes: [spec("ok")] }))).rejects.toThrow(/invalid worker id/);
    await expect(admin.register(create(RegisterWorkerRequestSchema, { workerId: "w1", agentTypes: [spec("a b")] }))).rejects.toThrow(/invalid agent type/);
    expect(await admin.agents()).toHaveLength(0);
  });
});
