import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { runCli, type CliProcess } from "../helpers/cli.js";
import { runLoad, type LoadFigures } from "../helpers/load.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { eventually, TestSystem } from "../helpers/system.js";

/**
 * Real processes at the default delivery settings (no shortened ack wait, reply time-out or
 * maximum deliveries): a host, a worker for the router and the user proxy, two workers for the
 * task agents (slowed to one second per message with SB_AGENT_DELAY_MS), and concurrent JSON
 * chats. Each scenario disrupts the system while the chats talk; every message must get exactly
 * one reply, counted in what the chats showed, on the wire and in the stream. The figures go to
 * docs/RELIABILITY.md.
 */
describe("chaos at the default settings", () => {
  let server: TestNatsServer;
  let sys: TestSystem;
  let nc: NatsConnection;
  const figures: LoadFigures[] = [];
  let host: CliProcess;
  let router: CliProcess;
  let tasks: CliProcess[] = [];
  const all: CliProcess[] = [];
  const USERS = 6;
  const MESSAGES = 8;
  // Empty values select the defaults, whatever the environment running the tests has set.
  const defaults = { SB_ACK_WAIT_MS: "", SB_MAX_DELIVER: "", SB_REPLY_TIMEOUT_MS: "", SB_HEARTBEAT_MS: "", SB_WORKER_TTL_MS: "" };
  const env = () => ({ NATS_URL: server.url, SB_AGENT_DELAY_MS: "1000", ...defaults });

  const start = async (args: string[]): Promise<CliProcess> => {
    const p = runCli(args, { ...env(), LOG_LEVEL: "debug" });
    all.push(p);
    await p.waitFor((x) => x.stderr.includes('"event":"host.started"') || x.stderr.includes('"event":"worker.started"'), 30_000, `${args.join(" ")} start`);
    return p;
  };
  const startTaskWorker = () => start(["worker", "--agents", "hr,finance"]);
  const handling = (p: CliProcess) => p.stderr.split('"event":"message.handling"').length - 1;
  const load = (scenario: string, during: (progress: () => number) => Promise<void>) =>
    runLoad(nc, { scenario, url: server.url, users: USERS, messagesPerUser: MESSAGES, env: defaults, during, timeoutMs: 150_000 });
  const expectNothingLost = (f: LoadFigures) => {
    figures.push(f);
    console.log(`chaos figures ${JSON.stringify(f)}`);
    expect(f).toMatchObject({ sent: USERS * MESSAGES, answered: USERS * MESSAGES, lost: 0, duplicated: 0, stored: USERS * MESSAGES });
    expect(f.otherEvents["timeout"] ?? 0).toBe(0);
    expect(f.otherEvents["error"] ?? 0).toBe(0);
  };

  beforeAll(async () => {
    server = await TestNatsServer.start();
    sys = TestSystem.on(server.url);
    nc = await sys.connect("chaos-observer");
    host = await start(["host"]);
    router = await start(["worker", "--agents", "router,user_proxy"]);
    tasks = [await startTaskWorker(), await startTaskWorker()];
  }, 120_000);
  afterAll(async () => {
    for (const p of all) await p.stop("SIGKILL");
    await sys.close();
    await server.stop();
    console.log(`chaos figures table\n${figures.map((f) => `| ${f.scenario} | ${f.sent} | ${f.answered} | ${f.lost} | ${f.duplicated} | ${f.longestStallS} s |`).join("\n")}`);
  });

  it("a task worker SIGKILLed mid-turn: the other completes its turns", async () => {
    const f = await load("kill-worker", async (progress) => {
      await eventually(() => progress() >= USERS, 60_000, "first replies");
      const before = tasks.map(handling);
      // Killed while it holds a message: its handler has started and not finished.
      const victim = await eventually(() => tasks.find((t, i) => handling(t) > before[i]!), 30_000, "a task worker handling a message");
      await victim.stop("SIGKILL");
      tasks = tasks.filter((t) => t !== victim);
    });
    expectNothingLost(f);
    tasks.push(await startTaskWorker());
  }, 240_000);

  it("every worker restarted gracefully, one after another, under load", async () => {
    const f = await load("rolling-restart", async (progress) => {
      await eventually(() => progress() >= USERS, 60_000, "first replies");
      // Each replacement starts before the old one stops, as a rolling deployment does.
      for (const old of [router, ...tasks]) {
        const replacement = old === router ? await start(["worker", "--agents", "router,user_proxy"]) : await startTaskWorker();
        expect(await old.stop("SIGTERM")).toBe(0);
        if (old === router) router = replacement;
        else tasks = tasks.map((t) => (t === old ? replacement : t));
      }
    });
    expectNothingLost(f);
  }, 240_000);

  it("the host SIGKILLed and restarted under load", async () => {
    const f = await load("kill-host", async (progress) => {
      await eventually(() => progress() >= USERS, 60_000, "first replies");
      await host.stop("SIGKILL");
      await new Promise((r) => setTimeout(r, 2_000));
      host = await start(["host"]);
    });
    expectNothingLost(f);
  }, 240_000);

  it("nats-server SIGKILLed and restarted on its store under load", async () => {
    const f = await load("kill-nats", async (progress) => {
      await eventually(() => progress() >= USERS, 60_000, "first replies");
      await server.kill();
      await new Promise((r) => setTimeout(r, 1_000));
      await server.restart();
    });
    expectNothingLost(f);
  }, 240_000);
});
