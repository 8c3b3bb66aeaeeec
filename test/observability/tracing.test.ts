import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestNatsServer } from "../helpers/nats-server.js";
import { runCli, type CliProcess } from "../helpers/cli.js";
import { OtlpReceiver, type ReceivedSpan } from "../helpers/otlp-receiver.js";

/** Words of the user's message that no span, metric or log line may repeat. */
const SECRET = "zanzibar offsite 7731";
const TEXT = `I need help with my budget for the ${SECRET}`;

/**
 * One turn through real processes, each exporting to a small OTLP/HTTP collector: the chat, a
 * worker running the router and the user proxy, and a worker running the task agents.
 */
describe("traces across the processes of a turn", () => {
  let server: TestNatsServer;
  let receiver: OtlpReceiver;
  let env: Record<string, string>;
  let host: CliProcess;
  let front: CliProcess;
  let desks: CliProcess;
  let chat: CliProcess;

  beforeAll(async () => {
    server = await TestNatsServer.start();
    receiver = await OtlpReceiver.start();
    env = {
      NATS_URL: server.url,
      SB_HEARTBEAT_MS: "500",
      SB_WORKER_TTL_MS: "3000",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "200",
      OTEL_METRIC_EXPORT_INTERVAL: "500",
    };
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 20_000, "host start");
    front = runCli(["worker", "--agents", "router,user_proxy"], env);
    desks = runCli(["worker", "--agents", "finance,hr"], env);
    await front.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 30_000, "front worker start");
    await desks.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 30_000, "desk worker start");
    chat = runCli(["chat", "--user", "alice"], env);
    chat.write(TEXT);
    chat.endInput();
    expect(await chat.exited).toBe(0);
  }, 90_000);

  afterAll(async () => {
    await front?.stop();
    await desks?.stop();
    await host?.stop();
    await receiver?.stop();
    await server?.stop();
  });

  it("continues one trace through chat, router, agent and user proxy, each span parented on the hop before", async () => {
    expect(chat.events.map((e) => e["event"])).toEqual(["routed", "reply"]);
    const isRoot = (s: ReceivedSpan) => s.name === "chat turn";
    await receiver.waitFor(() => receiver.spans.some(isRoot), 20_000, "the chat's turn span");
    const root = receiver.spans.find(isRoot)!;
    const inTrace = () => receiver.spans.filter((s) => s.traceId === root.traceId);
    const handle = (agentType: string) => inTrace().find((s) => s.name === "agent handle" && s.attributes["switchboard.agent.type"] === agentType);
    await receiver.waitFor(
      () => ["router", "finance", "user_proxy"].every((t) => handle(t)) && inTrace().some((s) => s.name === "chat receive" && s.attributes["cloudevents.event_type"] === "switchboard.v1.AgentReply"),
      30_000,
      "spans of every hop",
    );
    const router = handle("router")!;
    const finance = handle("finance")!;
    const proxy = handle("user_proxy")!;
    const classify = inTrace().find((s) => s.name === "router classify")!;
    const received = inTrace().find((s) => s.name === "chat receive" && s.attributes["cloudevents.event_type"] === "switchboard.v1.AgentReply")!;

    expect(root.parentSpanId).toBe("");
    expect(router.parentSpanId).toBe(root.spanId);
    expect(classify.parentSpanId).toBe(router.spanId);
    expect(finance.parentSpanId).toBe(router.spanId);
    expect(proxy.parentSpanId).toBe(finance.spanId);
    expect(received.parentSpanId).toBe(proxy.spanId);

    // Three processes: the chat, the front worker (router, user proxy) and the desk worker.
    expect(root.service).toBe("switchboard-chat");
    expect(router.service).toBe("switchboard-worker");
    expect(new Set([root.instance, router.instance, finance.instance]).size).toBe(3);
    expect(proxy.instance).toBe(router.instance);

    const session = String(chat.events[0]?.["session"]);
    expect(root.attributes).toMatchObject({ "switchboard.session.id": session, "switchboard.turn.outcome": "reply" });
    expect(finance.attributes).toMatchObject({ "switchboard.agent.type": "finance", "switchboard.session.id": session, "switchboard.delivery.count": 1 });
    expect(finance.attributes["switchboard.turn.id"]).toBe(root.attributes["switchboard.turn.id"]);
    expect(finance.events).toEqual([{ name: "delivery", attributes: { "switchboard.delivery.count": 1 } }]);
    expect(router.attributes).toMatchObject({ "switchboard.routing.decision": "routed", "switchboard.routing.agent_type": "finance" });
    expect(Number(router.attributes["switchboard.routing.score"])).toBeGreaterThan(0.5);
  });

  it("exports the handler metrics over OTLP", async () => {
    await receiver.waitFor(
      () => ["switchboard.agent.turns", "switchboard.agent.handler.duration", "switchboard.routing.decisions"].every((n) => receiver.metricNames.has(n)),
      20_000,
      "metrics",
    );
  });

  it("puts none of the user's text in any span, metric or log line", async () => {
    await receiver.waitFor(() => receiver.spans.some((s) => s.name === "agent handle" && s.attributes["switchboard.agent.type"] === "user_proxy"), 30_000, "spans");
    const everything = [...receiver.bodies, host.stderr, front.stderr, desks.stderr, chat.stderr].join("\n");
    expect(everything).toContain(String(chat.events[0]?.["session"]));
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain("zanzibar");
    expect(everything).not.toContain(TEXT);
  });
});
