import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { readSystemStats } from "../../src/cli/system-stats.js";
import { openChat } from "../helpers/chat.js";
import { runCli } from "../helpers/cli.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { ProbeAgentType } from "../helpers/probe-agent.js";
import { eventually, TestSystem, withHostedSystem } from "../helpers/system.js";

describe("a worker stopping gracefully under load", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("hands back what reaches it while stopping without burning deliveries: every message handled once", async () => {
    // Two deliveries only: a message given back into the stopping worker's own open pull would
    // run out of them at once. The staying worker is slow and full (64 messages in hand), so the
    // stopping worker's pull is the only one open when it gives messages back.
    const consumer = { maxDeliver: 2 };
    const stopping = new ProbeAgentType("bulk", { delayMs: 10, workerTag: "a" });
    const staying = new ProbeAgentType("bulk", { delayMs: 2_500, workerTag: "b" });
    const a = await sys.startWorker([stopping], { consumer });
    await sys.startWorker([staying], { consumer });
    const total = 250;
    const published = (async () => {
      for (let i = 0; i < total; i++) {
        await a.runtime.publish(create(UserMessageSchema, { sessionId: `s${i}`, user: "alice", turnId: `t${i}`, text: `m${i}` }), { type: "bulk", source: { user: "alice", session: `s${i}` } });
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await eventually(() => stopping.handled.length >= 40 && staying.active >= 60, 10_000, "both workers busy");
    await a.close();
    await published;
    const texts = () => [...stopping.handled, ...staying.handled].map((h) => h.text);
    await eventually(() => texts().length >= total, 40_000, "every message handled");
    await new Promise((r) => setTimeout(r, 2_500));
    expect(texts().sort()).toEqual(Array.from({ length: total }, (_, i) => `m${i}`).sort());
    expect(await (await sys.hostClient()).deadLetters()).toEqual([]);
  }, 60_000);

  it("delivers the replies it finishes while stopping when it also runs the user proxy", async () => {
    const worker = await sys.startWorker(builtinAgents(["router", "user_proxy", "hr", "finance"], { task: { delayMs: 1_500 } }));
    const chat = await openChat(sys, "alice", 10_000);
    const turn = chat.send("I need help with my budget");
    // Stop once finance is answering (it takes 1.5 s), not after a fixed time that a loaded
    // machine may spend before finance pulled the message: one no one pulled waits for a worker.
    const stats = await sys.connect("stats");
    await eventually(async () => ((await readSystemStats(stats)).agentTypes.find((t) => t.agentType === "finance")?.inFlight ?? 0) >= 1, 10_000, "finance answering");
    const stopped = worker.close();
    const started = Date.now();
    const events = await turn;
    expect(events.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(Date.now() - started).toBeLessThan(5_000);
    await stopped;
  });
});

describe("hosts and workers without a server", () => {
  let server: TestNatsServer;
  beforeEach(async () => {
    server = await TestNatsServer.start();
    await server.kill();
  });
  afterEach(async () => {
    await server.stop();
  });

  it("wait for a server that is not up yet, and exit 0 promptly on SIGTERM while it is down", async () => {
    const env = { NATS_URL: server.url, SB_HEARTBEAT_MS: "300", SB_WORKER_TTL_MS: "2000" };
    const worker = runCli(["worker", "--agents", "finance"], env);
    const host = runCli(["host"], env);
    try {
      await worker.waitFor((p) => p.stderr.includes("worker.waiting_for_nats"), 15_000, "worker waiting for NATS");
      await host.waitFor((p) => p.stderr.includes("host.waiting_for_nats"), 15_000, "host waiting for NATS");
      await server.restart();
      await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 30_000, "host started");
      await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 30_000, "worker started");

      await server.kill();
      await new Promise((r) => setTimeout(r, 1_500));
      for (const p of [worker, host]) {
        const asked = Date.now();
        expect(await p.stop("SIGTERM")).toBe(0);
        expect(Date.now() - asked).toBeLessThan(5_000);
      }
    } finally {
      await worker.stop("SIGKILL");
      await host.stop("SIGKILL");
    }
  }, 90_000);

  it("stop waiting for a server and exit 0 at once on SIGTERM", async () => {
    const worker = runCli(["worker", "--agents", "finance"], { NATS_URL: server.url });
    await worker.waitFor((p) => p.stderr.includes("worker.waiting_for_nats"), 15_000, "worker waiting for NATS");
    const asked = Date.now();
    expect(await worker.stop("SIGTERM")).toBe(0);
    expect(Date.now() - asked).toBeLessThan(2_000);
  });

  it("give up after SB_CONNECT_WAIT_MS with a message", async () => {
    const asked = Date.now();
    const worker = runCli(["worker", "--agents", "finance"], { NATS_URL: server.url, SB_CONNECT_WAIT_MS: "1500" });
    expect(await worker.exited).toBe(1);
    expect(Date.now() - asked).toBeGreaterThanOrEqual(1_500);
    expect(worker.stderr).toMatch(/cannot connect to NATS/);
  });
});
