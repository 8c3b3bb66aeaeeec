import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "../../src/core/roles.js";
import { UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { Worker } from "../../src/worker/worker.js";
import { runCli, runCliToEnd, type CliProcess } from "../helpers/cli.js";
import { expectDenied } from "../helpers/permissions.js";
import { ProbeAgentType } from "../helpers/probe-agent.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { eventually, subjects, testLogger, TestSystem } from "../helpers/system.js";

interface MicroEndpoint {
  readonly name: string;
  readonly subject: string;
  readonly queue_group?: string;
  readonly num_requests?: number;
  readonly data?: Record<string, unknown>;
}
interface MicroResponse {
  readonly type: string;
  readonly name: string;
  readonly id: string;
  readonly version: string;
  readonly metadata?: Record<string, string>;
  readonly endpoints?: MicroEndpoint[];
}

/** Every answer to a micro control request, as `nats micro` gathers them. */
async function ask(nc: NatsConnection, subject: string): Promise<MicroResponse[]> {
  const out: MicroResponse[] = [];
  for await (const m of await nc.requestMany(subject, "", { strategy: "stall", maxWait: 2_000 })) out.push(m.json<MicroResponse>());
  return out;
}

const message = (text: string, session: string) => create(UserMessageSchema, { sessionId: session, user: "alice", turnId: `t-${session}`, text });

describe("NATS micro discovery and admin stats", () => {
  let server: SecureTestServer;
  let host: CliProcess;
  let worker: CliProcess;
  let admin: NatsConnection;
  let probeWorker: Worker;
  let probe: ProbeAgentType;

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice"] });
    const env = server.env({ SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "3000" });
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 20_000, "host start");
    worker = runCli(["worker", "--agents", "router,user_proxy,finance", "--id", "w-front"], env);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 30_000, "worker start");
    admin = await server.connectAs(Role.Admin);
    probe = new ProbeAgentType("fragile", { failOn: "boom" });
    probeWorker = new Worker({
      nc: await server.connectAs(Role.Worker),
      subjects,
      logger: testLogger(),
      agents: [probe],
      workerId: "w-probe",
      consumer: { maxDeliver: 2, ackWaitMs: 2_000 },
      drainTimeoutMs: 5_000,
    });
    await probeWorker.start();
  }, 90_000);

  afterAll(async () => {
    await probeWorker?.close();
    await admin?.close();
    await worker?.stop();
    await host?.stop();
    await server?.stop();
  });

  it("answers $SRV.PING, INFO and STATS from a worker and a host, naming their endpoints and subjects", async () => {
    const pings = await ask(admin, "$SRV.PING");
    expect(pings.map((p) => p.name).sort()).toEqual(["switchboard-host", "switchboard-worker", "switchboard-worker"]);
    expect(pings.find((p) => p.metadata?.["worker_id"] === "w-front")).toMatchObject({ type: "io.nats.micro.v1.ping_response", version: expect.stringMatching(/^\d+\.\d+\.\d+/) });

    const [hostInfo] = await ask(admin, "$SRV.INFO.switchboard-host");
    expect(hostInfo?.endpoints).toEqual([expect.objectContaining({ name: "requests", subject: "sb.host.>", queue_group: "sb-host" })]);

    const workerStats = await ask(admin, "$SRV.STATS.switchboard-worker");
    const front = workerStats.find((s) => s.metadata?.["worker_id"] === "w-front");
    expect(front?.endpoints?.map((e) => [e.name, e.subject, e.queue_group])).toEqual([
      ["router", "sb.rpc.router.>", "sb-rpc-router"],
      ["user_proxy", "sb.rpc.user_proxy.>", "sb-rpc-user_proxy"],
      ["finance", "sb.rpc.finance.>", "sb-rpc-finance"],
    ]);
    expect(front?.endpoints?.[2]?.data).toMatchObject({ agentType: "finance", workerId: "w-front", turns: 0, consumers: [expect.objectContaining({ name: "finance__finance" })] });

    // The host's requests go through its micro endpoint, and are counted there.
    const [hostStats] = await ask(admin, `$SRV.STATS.switchboard-host.${hostInfo?.id}`);
    expect(hostStats?.endpoints?.[0]?.num_requests).toBeGreaterThan(0);
  });

  it("hides the services from a chat user", async () => {
    const alice = await server.connectAs(Role.Client, "alice");
    try {
      await expectDenied(alice.request("$SRV.PING", "", { timeout: 2_000 }));
    } finally {
      await alice.close();
    }
  });

  it("reports in `admin stats --json` the turns and dead letters of the load put through", async () => {
    const good = 5;
    const bad = 2;
    for (let i = 0; i < good; i++) await probeWorker.runtime.publish(message(`fine ${i}`, `s-ok${i}`), { type: "fragile", source: { user: "alice", session: `s-ok${i}` } });
    for (let i = 0; i < bad; i++) await probeWorker.runtime.publish(message(`boom ${i}`, `s-bad${i}`), { type: "fragile", source: { user: "alice", session: `s-bad${i}` } });
    const env = server.env();
    const stats = await eventually(async () => {
      const run = await runCliToEnd(["admin", "stats", "--json"], env);
      expect(run.code, run.stderr).toBe(0);
      const parsed = JSON.parse(run.stdout) as { agentTypes: { agentType: string; turns: number; deadLetters: number; redeliveries: number; failures: number; workers: number; latency: { count: number } }[]; deadLettersStored: number; workers: { workerId: string }[] };
      const fragile = parsed.agentTypes.find((a) => a.agentType === "fragile");
      return fragile && fragile.turns === good && fragile.deadLetters === bad && parsed.deadLettersStored === bad ? parsed : undefined;
    }, 30_000, "stats matching the load");
    const fragile = stats.agentTypes.find((a) => a.agentType === "fragile");
    expect(fragile).toMatchObject({ workers: 1, turns: good, deadLetters: bad, redeliveries: bad, failures: bad * 2 });
    expect(fragile?.latency.count).toBe(good + bad * 2);
    expect(stats.workers.map((w) => w.workerId).sort()).toEqual(["w-front", "w-probe"]);
    expect(probe.handled.filter((h) => h.text.startsWith("fine"))).toHaveLength(good);

    const table = await runCliToEnd(["admin", "stats"], env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^AGENT TYPE\s+WORKERS\s+TURNS/m);
    expect(table.stdout).toMatch(new RegExp(`^fragile\\s+1\\s+${good}\\s+${bad * 2}\\s`, "m"));
    expect(table.stdout).toMatch(new RegExp(`dead letters stored: ${bad}`));
  });
});

describe("a server whose permissions predate micro discovery", () => {
  let server: TestNatsServer;
  let sys: TestSystem;

  beforeAll(async () => {
    // Services may not subscribe to $SRV here, as on a server configured before discovery existed.
    server = await TestNatsServer.start({
      extraConfig: `authorization { users = [ { user: "svc", password: "pw", permissions: { publish: { allow: [">"] }, subscribe: { allow: [">"], deny: ["$SRV.>"] } } } ] }\nno_auth_user: "svc"`,
    });
    sys = TestSystem.on(server.url);
  });

  afterAll(async () => {
    await sys?.close();
    await server?.stop();
  });

  it("keeps the host's and a worker's requests served without the announcement", async () => {
    await sys.startHost();
    const probe = new ProbeAgentType("echo");
    const worker = await sys.startWorker([probe]);
    const host = await sys.hostClient();
    // Registration went through the host's endpoint; it and RPC keep answering once the announcement is refused.
    await new Promise((r) => setTimeout(r, 500));
    expect((await host.workers()).map((w) => w.workerId)).toEqual([worker.id]);
    const reply = await worker.runtime.send(message("ping", "s-rpc"), { type: "echo", key: "alice.s-rpc" });
    expect(reply.$typeName).toBe("switchboard.v1.AgentReply");
  });
});
