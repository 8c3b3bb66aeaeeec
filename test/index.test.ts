import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import * as api from "../src/index.js";
import { builtinAgents } from "../src/agents/builtin.js";
import { openChat } from "./helpers/chat.js";
import { eventually, withHostedSystem, type TestSystem } from "./helpers/system.js";

describe("the package entry", () => {
  it("exports exactly the documented values (docs/API.md); anything more is a semver promise", () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        "AgentError",
        "AuthenticationFailedError",
        "CancelledError",
        "ConfigError",
        "ConnectionFailedError",
        "ErrorCode",
        "InvalidIdError",
        "NoRespondersError",
        "PermissionDeniedError",
        "RemoteError",
        "SwitchboardError",
        "TimeoutError",
        "createTurn",
        "createWorker",
        "defineAgent",
        "runReply",
        "version",
      ].sort(),
    );
  });

  it("reports the version of package.json", async () => {
    const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    expect(api.version).toBe(pkg.version);
  });

  it("rejects a worker without agents before connecting", () => {
    expect(() => api.createWorker({ agents: [] })).toThrow(api.ConfigError);
  });
});

describe("createWorker", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("runs defined agents in the caller's process, routed like any other", async () => {
    const travel = api.defineAgent({
      type: "travel",
      description: "Business travel: flights and hotels.",
      keywords: ["flight"],
      examples: ["Book a flight"],
      reply: (turn) => `embedded: ${turn.text}`,
    });
    const worker = api.createWorker({ agents: [travel, ...builtinAgents(["router", "user_proxy"])], servers: sys.url, logLevel: "silent", concurrency: 8 });
    sys.closers.push(() => worker.close());
    await worker.start();
    expect(worker.id).toMatch(/^w/);
    const chat = await openChat(sys, "alice", 10_000);
    // About business travel: "I need a flight to Rome" alone reads as a holiday (docs/ROUTING.md).
    const events = await chat.send("Book me a flight to Rome for the sales meeting");
    expect(events.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(events[1]).toMatchObject({ agent: "travel", content: "embedded: Book me a flight to Rome for the sales meeting" });
    await worker.close();
    await worker.closed();
  });

  it("stops a started worker when the signal given to start() aborts", async () => {
    const echo = api.defineAgent({ type: "echo", description: "Echoes.", keywords: ["echo"], examples: ["echo this"], reply: (turn) => turn.text });
    const worker = api.createWorker({ agents: [echo], servers: sys.url, logLevel: "silent" });
    sys.closers.push(() => worker.close());
    const controller = new AbortController();
    await worker.start(controller.signal);
    const admin = await sys.hostClient();
    await eventually(async () => (await admin.workers()).some((w) => w.workerId === worker.id), 5_000, "registered");
    controller.abort();
    await worker.closed();
    // It deregistered on the way out.
    await eventually(async () => (await admin.workers()).every((w) => w.workerId !== worker.id), 5_000, "deregistered");
  });
});
