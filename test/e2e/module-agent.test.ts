import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentReplyDeltaSchema, type AgentReplyDelta } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { runCli, runCliToEnd, type CliProcess } from "../helpers/cli.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { eventually } from "../helpers/system.js";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/modules/${name}`, import.meta.url));

/** Deltas of every session of a user, in arrival order. */
function collectDeltas(nc: NatsConnection, user: string): { deltas: AgentReplyDelta[]; sub: Subscription } {
  const deltas: AgentReplyDelta[] = [];
  const sub = nc.subscribe(`sb.delta.${user}.*`, { callback: (err, msg) => {
    if (!err) deltas.push(fromBinary(AgentReplyDeltaSchema, msg.data));
  } });
  return { deltas, sub };
}

describe("switchboard worker --module: user agents in the shipped worker", () => {
  let server: TestNatsServer;
  let env: Record<string, string>;
  let host: CliProcess;
  let worker: CliProcess;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await TestNatsServer.start();
    // Two deliveries: a failing turn reaches the user after one retry, not four.
    env = { NATS_URL: server.url, SB_HEARTBEAT_MS: "500", SB_WORKER_TTL_MS: "3000", SB_MAX_DELIVER: "2" };
    host = runCli(["host"], env);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 15_000, "host start");
    worker = runCli(["worker", "--module", fixture("travel.mjs"), "--module", fixture("two-agents.mjs"), "--concurrency", "128"], env);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 20_000, "worker start");
    nc = await connect({ servers: server.url });
  });

  afterAll(async () => {
    await nc?.close();
    await worker?.stop("SIGKILL");
    await host?.stop("SIGKILL");
    await server?.stop();
  });

  it("runs module agents beside the built-in ones", () => {
    const started = worker.stderr.split("\n").find((l) => l.includes('"event":"worker.started"')) ?? "";
    expect(JSON.parse(started)).toMatchObject({ agentTypes: ["router", "user_proxy", "hr", "finance", "travel", "legal", "facilities"] });
  });

  it("routes to a module agent by its profile, streams its reply, remembers the conversation and ends on END", async () => {
    const { deltas, sub } = collectDeltas(nc, "alice");
    await nc.flush();
    const chat = runCli(["chat", "--user", "alice"], env);
    for (const line of ["I need to book a flight to Munich", "and a hotel near the fair", "Thanks, END"]) chat.write(line);
    chat.endInput();
    expect(await chat.exited).toBe(0);
    // Deltas travel apart from the durable reply; give the last ones a moment to arrive here.
    await eventually(() => deltas.length >= 6, 5_000, "six deltas");
    sub.unsubscribe();
    const events = chat.events;
    expect(events.map((e) => [e["event"], e["agent"] ?? null])).toEqual([
      ["routed", "travel"],
      ["reply", "travel"],
      ["reply", "travel"],
      ["ended", "travel"],
    ]);
    expect(events[1]).toMatchObject({ name: "travel_agent", content: "Trip desk, turn 1. I remember 0 messages and 1 replies. You said: I need to book a flight to Munich" });
    // History and typed state come back from the session's state on the second turn.
    expect(events[2]?.["content"]).toBe("Trip desk, turn 2. I remember 2 messages and 2 replies. You said: and a hotel near the fair");
    expect(events[3]).toMatchObject({ reason: "user_request", content: "Session ended. Thank you for contacting travel_agent." });
    // Each chunk went out as a delta, numbered from 1 within its turn, before the durable reply.
    // One publisher, one connection: core NATS keeps their order.
    expect(deltas.slice(0, 3).map((d) => [d.sequence, d.text, d.agentType, d.sessionId])).toEqual([
      [1, "Trip desk, turn 1. ", "travel", events[0]?.["session"]],
      [2, "I remember 0 messages and 1 replies. ", "travel", events[0]?.["session"]],
      [3, "You said: I need to book a flight to Munich", "travel", events[0]?.["session"]],
    ]);
    expect(deltas).toHaveLength(6);
  });

  it("lets a module agent end the conversation itself", async () => {
    const chat = runCli(["chat", "--user", "bob"], env);
    chat.write("Book a flight to Oslo, that is all");
    chat.endInput();
    expect(await chat.exited).toBe(0);
    expect(chat.events.map((e) => [e["event"], e["agent"] ?? null])).toEqual([
      ["routed", "travel"],
      ["ended", "travel"],
    ]);
    expect(chat.events[1]).toMatchObject({ reason: "agent_finished", content: "Trip desk, turn 1. I remember 0 messages and 1 replies. You said: Book a flight to Oslo, that is all" });
  });

  it("hands the session to another agent when the user changes subject", async () => {
    const chat = runCli(["chat", "--user", "carol"], env);
    chat.write("I need a hotel in Paris");
    chat.write("What is left in my budget?");
    chat.endInput();
    expect(await chat.exited).toBe(0);
    expect(chat.events.map((e) => [e["event"], e["agent"] ?? null])).toEqual([
      ["routed", "travel"],
      ["reply", "travel"],
      ["routed", "finance"],
      ["reply", "finance"],
    ]);
    expect(chat.events[2]).toMatchObject({ from: "travel" });
  });

  it("turns a thrown error into an error event after bounded retries, and AgentError into its own text at once", async () => {
    const chat = runCli(["chat", "--user", "dave"], env);
    chat.write("Book a flight, and crash please");
    chat.write("Book a flight to the moon");
    chat.endInput();
    expect(await chat.exited).not.toBeNull();
    const events = chat.events;
    expect(events.map((e) => [e["event"], e["code"] ?? e["agent"] ?? null])).toEqual([
      ["routed", "travel"],
      ["error", "handler_failed"],
      ["error", "agent_failed"],
    ]);
    expect(events.slice(1).map((e) => e["agent"])).toEqual(["travel", "travel"]);
    expect(events[1]?.["message"]).toBe("the travel agent failed to handle your message");
    expect(events[2]?.["message"]).toBe("No trips to the moon, sorry.");
    // The agent's own error text stays in the worker's log, never in the chat.
    expect(JSON.stringify(events)).not.toContain("backend is down");
    expect(worker.stderr).toContain("the booking backend is down");
  });

  it("routes among the agents of a module that exports an array", async () => {
    const chat = runCli(["chat", "--user", "erin"], env);
    chat.write("A question about facilities: the heating is off");
    chat.endInput();
    expect(await chat.exited).toBe(0);
    expect(chat.events.map((e) => [e["event"], e["content"] ?? e["agent"]])).toEqual([
      ["routed", "facilities"],
      ["reply", "facilities: A question about facilities: the heating is off"],
    ]);
  });
});

describe("switchboard worker --module: modules it cannot use", () => {
  // The modules are checked before connecting, so no server is needed (and none is waited for).
  const env = { NATS_URL: "nats://127.0.0.1:1", SB_CONNECT_WAIT_MS: "0" };

  it.each([
    ["throws.mjs", /cannot load agent module .*throws\.mjs .*this module fails while loading/],
    ["missing.mjs", /cannot load agent module .*missing\.mjs/],
    ["syntax-error.mjs", /cannot load agent module .*syntax-error\.mjs .*Unexpected identifier 'oops'\n  at .*syntax-error\.mjs:4\n +answer: 42 oops/],
    ["nothing.mjs", /agent module .*nothing\.mjs exports no agent definition \(exports found: helper, notAnAgent\)/],
    ["clash-builtin.mjs", /agent type "hr" from .*clash-builtin\.mjs \(export myHr\) clashes with the built-in agent type/],
  ])("rejects %s with an error naming the file and export", async (name, expected) => {
    const result = await runCliToEnd(["worker", "--module", fixture(name)], env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(expected);
  });

  it("rejects two modules defining the same agent type", async () => {
    const result = await runCliToEnd(["worker", "--module", fixture("travel.mjs"), "--module", fixture("clash-module.mjs")], env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/agent type "travel" from .*clash-module\.mjs \(export otherTravel\) clashes with the same type from .*travel\.mjs \(export travel\)/);
  });

  it("names module agents among the choices for an unknown --agents entry", async () => {
    const result = await runCliToEnd(["worker", "--module", fixture("travel.mjs"), "--agents", "router,trvel"], env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/unknown agent type "trvel"; built-in agent types are: router, user_proxy, hr, finance; from --module: travel/);
  });

  it("takes a path without ./ as typed at a shell, and --agents naming only module agents", async () => {
    // Vitest runs in the repository, which is also the command's working directory.
    const result = await runCliToEnd(["worker", "--module", "test/fixtures/modules/travel.mjs", "--agents", "travel"], env);
    expect(result.code).not.toBe(0);
    // Loaded and selected: what stops it is the absent server.
    expect(result.stderr).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });

  it("names a module that is neither a file nor an installed package", async () => {
    const result = await runCliToEnd(["worker", "--module", "no-such-agents"], env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/cannot find agent module "no-such-agents": no such file in .* and no such package installed there/);
  });

  it("rejects a concurrency that is not a positive integer", async () => {
    const result = await runCliToEnd(["worker", "--concurrency", "0"], env);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/SB_CONCURRENCY must be an integer of at least 1/);
  });
});
