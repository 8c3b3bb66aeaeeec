import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestNatsServer } from "../helpers/nats-server.js";
import { runCli, runCliToEnd, type CliProcess } from "../helpers/cli.js";

/** The reference scenario, every component a separate process, as on separate machines. */
describe("end to end: host, worker and chat as separate processes", () => {
  let server: TestNatsServer;
  let env: Record<string, string>;
  let host: CliProcess;
  let worker: CliProcess;

  beforeAll(async () => {
    server = await TestNatsServer.start();
    env = { NATS_URL: server.url, SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "3000" };
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 15_000, "host start");
    worker = runCli(["worker", "--agents", "router,user_proxy,hr,finance"], env);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 15_000, "worker start");
  });

  afterAll(async () => {
    await worker?.stop("SIGKILL");
    await host?.stop("SIGKILL");
    await server?.stop();
  });

  it("plays the seed scenario through `switchboard chat` in JSON-lines mode", async () => {
    const chat = runCli(["chat", "--user", "alice"], env);
    for (const line of [
      "I need help with my budget",
      "Can you tell me more?",
      "Thanks, END",
      "three people are waiting outside",
      "Talk to HR please",
      "END",
    ]) chat.write(line);
    chat.endInput();
    expect(await chat.exited).toBe(0);
    const events = chat.events;
    expect(events.map((e) => [e["event"], e["agent"] ?? null])).toEqual([
      ["routed", "finance"],
      ["reply", "finance"],
      ["reply", "finance"],
      ["ended", "finance"],
      ["no_agent", null],
      ["routed", "hr"],
      ["reply", "hr"],
      ["ended", "hr"],
    ]);
    expect(events[1]?.["content"]).toBe("Hello from finance_agent! You said: I need help with my budget");
    expect(events[2]?.["content"]).toBe("Hello from finance_agent! You said: Can you tell me more?");
    expect(events[3]).toMatchObject({ reason: "user_request" });
    expect(events[4]).toMatchObject({ available: ["finance", "hr"] });
    expect(events[6]?.["content"]).toBe("Hello from hr_agent! You said: Talk to HR please");
    // A new session after END.
    expect(events[4]?.["session"]).not.toBe(events[0]?.["session"]);

    const sessions = await runCliToEnd(["admin", "sessions", "--json"], env);
    expect(sessions.code).toBe(0);
    const listed = JSON.parse(sessions.stdout) as { sessionId: string; state: string; agentType: string; turns: number }[];
    const first = listed.find((s) => s.sessionId === events[0]?.["session"]);
    expect(first).toMatchObject({ state: "SESSION_STATE_ENDED", agentType: "finance", turns: 3 });

    const one = await runCliToEnd(["admin", "session", String(events[5]?.["session"])], env);
    expect(one.code).toBe(0);
    expect(one.stdout).toMatch(/state\s+ended \(user_request\)/);
    expect(one.stdout).toContain("[user] alice: three people are waiting outside");
    expect(one.stdout).toContain("[agent] hr: Hello from hr_agent! You said: Talk to HR please");
  });

  it("answers admin queries with tables for a person", async () => {
    const agents = await runCliToEnd(["admin", "agents"], env);
    expect(agents.code).toBe(0);
    expect(agents.stdout).toMatch(/^TYPE\s+AVAILABLE\s+WORKERS/m);
    expect(agents.stdout).toMatch(/^finance\s+yes\s+1\s+yes\s+finance, money, budget/m);
    const workers = await runCliToEnd(["admin", "workers"], env);
    expect(workers.stdout).toMatch(/router,user_proxy,hr,finance/);
    const missing = await runCliToEnd(["admin", "session", "s-nope"], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no session s-nope/);
  });

  it("routes on the meaning of a word without writing that word to a log at info level", async () => {
    const chat = runCli(["chat", "--user", "carol"], env);
    chat.write("Where do I send receipts from my trip?");
    chat.write("END");
    chat.endInput();
    expect(await chat.exited).toBe(0);
    const routed = chat.events.find((e) => e["event"] === "routed");
    expect(routed).toMatchObject({ agent: "finance" });
    // The chat, the user's own view, says which word carried the request.
    expect(String(routed?.["intent"])).toContain("receipts");
    await host.waitFor((p) => p.stderr.split("\n").filter((l) => l.includes('"event":"session.routed"')).length >= 3, 5_000, "session.routed");
    const routedLogs = (host.stderr + worker.stderr).split("\n").filter((l) => l.includes('"event":"router.routed"') || l.includes('"event":"session.routed"'));
    expect(routedLogs.length).toBeGreaterThanOrEqual(4);
    expect(host.stderr + worker.stderr).not.toContain("receipts");
  });

  it("logs lifecycle events as structured JSON without message contents", () => {
    const events = host.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => (JSON.parse(l) as { event?: string }).event);
    for (const e of ["host.started", "agent.registered", "worker.joined", "session.opened", "session.routed", "session.ended"]) expect(events).toContain(e);
    expect(host.stderr + worker.stderr).not.toContain("I need help with my budget");
  });

  it("stops a worker gracefully on SIGTERM: it deregisters and exits 0", async () => {
    expect(await worker.stop("SIGTERM")).toBe(0);
    expect(worker.stderr).toContain('"event":"worker.stopped"');
    await host.waitFor((p) => p.stderr.includes('"event":"worker.left"'), 5_000, "worker.left");
    const agents = await runCliToEnd(["admin", "agents", "--json"], env);
    const parsed = JSON.parse(agents.stdout) as { spec: { type: string }; available?: boolean }[];
    expect(parsed.every((a) => a.available !== true)).toBe(true);
    // With no worker, the chat says so instead of hanging.
    const chat = runCli(["chat", "--user", "bob", "--timeout", "1500"], env);
    chat.write("budget please");
    chat.endInput();
    // A message left with only a `timeout` is a failure a script can see.
    expect(await chat.exited).toBe(1);
    expect(chat.events.map((e) => e["event"])).toEqual(["queued", "timeout"]);
    expect(await host.stop("SIGTERM")).toBe(0);
  });
});

describe("end to end: `switchboard up`", () => {
  let server: TestNatsServer;
  beforeAll(async () => {
    server = await TestNatsServer.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("starts a host and a worker against a running server, chats, and stops what it started", async () => {
    const env = { NATS_URL: server.url };
    const up = runCli(["up", "--json", "--user", "carol"], env);
    up.write("Where did all the money go?");
    up.write("END");
    up.endInput();
    expect(await up.exited, up.stderr).toBe(0);
    expect(up.events.map((e) => e["event"])).toEqual(["routed", "reply", "ended"]);
    expect(up.stderr).toContain("Switchboard is up");
    // It says it reuses a server it did not start, and that this one lets anyone in.
    expect(up.stderr).toContain(`Using the NATS server already running at ${server.url}`);
    expect(up.stderr).toContain("that server requires no credentials");
    // The worker it started deregistered on the way out; a fresh host answers with no workers.
    const host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes("host.started"), 15_000, "host start");
    const workers = await runCliToEnd(["admin", "workers", "--json"], env);
    expect(JSON.parse(workers.stdout)).toEqual([]);
    expect(await host.stop()).toBe(0);
  });
});

describe("command line", () => {
  it("prints true help for every command", async () => {
    for (const cmd of ["up", "host", "worker", "chat", "admin"]) {
      const r = await runCliToEnd([cmd, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: switchboard ${cmd}`);
      expect(r.stdout).toContain("--nats <url>");
    }
    const main = await runCliToEnd(["--help"]);
    expect(main.stdout).toMatch(/Commands:\n\s+up/);
  });

  it("fails clearly when NATS is not reachable or an argument is wrong", async () => {
    const noServer = await runCliToEnd(["admin", "agents", "--nats", "nats://127.0.0.1:1"]);
    expect(noServer.code).toBe(1);
    expect(noServer.stderr).toMatch(/cannot connect to NATS at nats:\/\/127.0.0.1:1/);
    const badAgent = await runCliToEnd(["worker", "--agents", "router,payroll"]);
    expect(badAgent.code).toBe(2);
    expect(badAgent.stderr).toMatch(/unknown agent type "payroll"; built-in agent types are: router, user_proxy, hr, finance/);
    const badFlag = await runCliToEnd(["chat", "--colour"]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/switchboard chat --help/);
  });
});
