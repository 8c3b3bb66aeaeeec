import { create, isMessage } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AgentError, ConfigError, createTurn, defineAgent, runReply } from "../../src/index.js";
import { MAX_STATE_BYTES, replyChunks, toAgentTypeDefinition } from "../../src/agents/define-agent-runtime.js";
import { readSystemStats } from "../../src/cli/system-stats.js";
import { sleep } from "../../src/core/sleep.js";
import { AgentReplySchema, ErrorEventSchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { builtinAgents } from "../../src/agents/builtin.js";
import { watchResponses } from "../helpers/responses.js";
import { eventually, withHostedSystem, type TestSystem } from "../helpers/system.js";

const profile = { type: "travel", description: "Business travel.", examples: ["Book a flight"] };

describe("defineAgent", () => {
  it("returns a frozen definition with defaults filled in", () => {
    const def = defineAgent({ ...profile, keywords: [" flight ", ""], reply: (turn) => turn.text });
    expect(Object.isFrozen(def)).toBe(true);
    expect(def).toMatchObject({ format: 1, type: "travel", keywords: ["flight"], displayName: "travel_agent", historyLimit: 20, timeoutMs: 120_000 });
    expect(def.initialState()).toBeNull();
  });

  it.each([
    [{ ...profile, type: "no spaces" }, /agent type "no spaces" is invalid/],
    [{ ...profile, description: " " }, /description must say what the agent handles/],
    [{ ...profile, examples: [] }, /at least one example/],
    [{ ...profile, historyLimit: 1_000 }, /historyLimit must be an integer from 0 to 200/],
    [{ ...profile, reply: "hello" }, /reply must be a function/],
  ])("rejects invalid options at once with a ConfigError (%#)", (options, message) => {
    const attempt = () => defineAgent({ reply: () => "", ...options } as Parameters<typeof defineAgent>[0]);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
  });
});

describe("AgentError", () => {
  it("is recognised when thrown by another copy of the package", () => {
    class OtherCopysAgentError extends Error {
      constructor(readonly userText: string) {
        super(userText);
        Object.defineProperty(this, Symbol.for("switchboard.agent-error"), { value: true });
      }
    }
    expect(new OtherCopysAgentError("no") instanceof AgentError).toBe(true);
    expect(new Error("no") instanceof AgentError).toBe(false);
    class Refusal extends AgentError {}
    expect(new Refusal("no") instanceof AgentError).toBe(true);
    expect(new AgentError("no") instanceof Refusal).toBe(false);
  });
});

describe("reply results", () => {
  const collect = async (result: Parameters<typeof replyChunks>[0]) => {
    const out: string[] = [];
    for await (const chunk of replyChunks(result)) out.push(chunk);
    return out;
  };

  it("accepts a string, a promise, an iterable and an async iterable", async () => {
    expect(await collect("whole")).toEqual(["whole"]);
    expect(await collect(Promise.resolve("later"))).toEqual(["later"]);
    expect(await collect(["a", "b"])).toEqual(["a", "b"]);
    expect(await collect((async function* () { yield "x"; yield "y"; })())).toEqual(["x", "y"]);
  });

  it("rejects chunks that are not strings", async () => {
    await expect(collect((async function* () { yield 42 as unknown as string; })())).rejects.toThrow(/yield strings/);
    await expect(collect(Promise.resolve(undefined as unknown as string))).rejects.toThrow(/resolve to a string/);
    await expect(collect(42 as unknown as string)).rejects.toThrow(/return a string/);
  });

  it("runs an agent without a bus for unit tests, state and end included", async () => {
    const counter = defineAgent({
      ...profile,
      initialState: () => ({ seen: 0 }),
      async *reply(turn) {
        turn.state = { seen: turn.state.seen + 1 };
        yield `${turn.agentType} #${turn.turn}: `;
        yield turn.text;
        if (turn.text === "bye") turn.end();
      },
    });
    expect(await runReply(counter, { text: "hi" })).toEqual({ text: "travel #1: hi", chunks: ["travel #1: ", "hi"], state: { seen: 1 }, ended: false });
    expect(await runReply(counter, { text: "bye", state: { seen: 4 } })).toMatchObject({ state: { seen: 5 }, ended: true });
    const turn = createTurn({ text: "hello", history: [{ role: "user", text: "earlier", turnId: "t0" }, { role: "agent", text: "answer", turnId: "t0" }] });
    expect(turn).toMatchObject({ text: "hello", turn: 2, attempt: 1, user: "test-user" });
    expect(turn.signal.aborted).toBe(false);
  });
});

describe("defined agents in a worker", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  const message = (user: string, i: number) => create(UserMessageSchema, { sessionId: `s${i}`, user, turnId: `t${i}`, text: `message ${i}` });

  it("answers many turns at once without a listener-leak warning", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    try {
      const slow = defineAgent({
        ...profile,
        async reply(turn) {
          await sleep(300, turn.signal);
          return `done ${turn.text}`;
        },
      });
      const worker = await sys.startWorker([...builtinAgents(["user_proxy"]), toAgentTypeDefinition(slow)], { consumer: { concurrency: 100 } });
      const seen = await watchResponses(await sys.connect("watch"), "alice");
      const users = 60;
      await Promise.all(Array.from({ length: users }, (_, i) => worker.runtime.publish(message("alice", i), { type: "travel", source: { user: "alice", session: `s${i}` } })));
      await eventually(() => seen.filter((e) => isMessage(e.message, AgentReplySchema)).length === users, 15_000, "every reply");
      expect(warnings.filter((w) => w.includes("MaxListeners"))).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("shows a turn that overruns its deadline to the user as a timeout, once", async () => {
    const stuck = defineAgent({
      ...profile,
      timeoutMs: 300,
      // Ignores its signal on purpose: the deadline must reach the user anyway.
      reply: () => new Promise<string>((resolve) => setTimeout(() => resolve("too late"), 5_000)),
    });
    const worker = await sys.startWorker([toAgentTypeDefinition(stuck)]);
    const seen = await watchResponses(await sys.connect("watch"), "alice");
    await worker.runtime.publish(message("alice", 1), { type: "travel", source: { user: "alice", session: "s1" } });
    const error = await eventually(() => seen.find((e) => isMessage(e.message, ErrorEventSchema))?.message, 5_000, "timeout error");
    expect(error).toMatchObject({ code: "timeout", turnId: "t1", message: "the travel_agent did not answer within 300 ms" });
  });

  it("fails a turn whose state cannot be saved once, told to the user and counted, keeping the state saved before", async () => {
    let calls = 0;
    const notebook = defineAgent({
      ...profile,
      initialState: () => ({ notes: 0 }),
      reply(turn) {
        calls++;
        if (turn.text === "huge") turn.state = { notes: turn.state.notes, blob: "x".repeat(MAX_STATE_BYTES) } as unknown as typeof turn.state;
        else if (turn.text === "bigint") turn.state = { notes: 10n } as unknown as typeof turn.state;
        else turn.state = { notes: turn.state.notes + 1 };
        return `notes: ${turn.state.notes}`;
      },
    });
    const worker = await sys.startWorker([...builtinAgents(["user_proxy"]), toAgentTypeDefinition(notebook)]);
    const seen = await watchResponses(await sys.connect("watch"), "alice");
    const send = (turnId: string, text: string) =>
      worker.runtime.publish(create(UserMessageSchema, { sessionId: "s1", user: "alice", turnId, text }), { type: "travel", source: { user: "alice", session: "s1" } });
    const answers = () => seen.filter((e) => isMessage(e.message, AgentReplySchema) || isMessage(e.message, ErrorEventSchema)).map((e) => e.message as { $typeName: string; turnId: string; code?: string; content?: string });
    await send("t1", "one");
    await eventually(() => answers().length === 1, 5_000, "the first answer");
    await send("t2", "huge");
    await send("t3", "bigint");
    await eventually(() => answers().length === 3, 5_000, "both failures");
    await sleep(1_500);
    expect(calls).toBe(3);
    await send("t4", "two");
    await eventually(() => answers().length === 4, 5_000, "the next answer");
    expect(answers()).toEqual([
      expect.objectContaining({ turnId: "t1", content: "notes: 1" }),
      expect.objectContaining({ turnId: "t2", code: "handler_failed" }),
      expect.objectContaining({ turnId: "t3", code: "handler_failed" }),
      expect.objectContaining({ turnId: "t4", content: "notes: 2" }),
    ]);
    const stats = await readSystemStats(await sys.connect("stats"));
    expect(stats.agentTypes.find((t) => t.agentType === "travel")).toMatchObject({ turns: 2, failures: 2 });
  });

  it("fails a reply of the wrong type once, without retrying it", async () => {
    let calls = 0;
    const wrong = defineAgent({
      ...profile,
      reply: () => {
        calls++;
        return 42 as unknown as string;
      },
    });
    const worker = await sys.startWorker([toAgentTypeDefinition(wrong)]);
    const seen = await watchResponses(await sys.connect("watch"), "alice");
    await worker.runtime.publish(message("alice", 1), { type: "travel", source: { user: "alice", session: "s1" } });
    const error = await eventually(() => seen.find((e) => isMessage(e.message, ErrorEventSchema))?.message, 5_000, "error event");
    expect(error).toMatchObject({ code: "handler_failed", message: "the travel_agent failed while answering your message" });
    await sleep(1_000);
    expect(calls).toBe(1);
  });

  it("does not retry an AgentError", async () => {
    let calls = 0;
    const refusing = defineAgent({
      ...profile,
      reply: () => {
        calls++;
        throw new AgentError("That trip is not allowed.");
      },
    });
    const worker = await sys.startWorker([toAgentTypeDefinition(refusing)]);
    const seen = await watchResponses(await sys.connect("watch"), "alice");
    await worker.runtime.publish(message("alice", 1), { type: "travel", source: { user: "alice", session: "s1" } });
    const error = await eventually(() => seen.find((e) => isMessage(e.message, ErrorEventSchema))?.message, 5_000, "error event");
    expect(error).toMatchObject({ code: "agent_failed", message: "That trip is not allowed." });
    await sleep(1_000);
    expect(calls).toBe(1);
  });
});
