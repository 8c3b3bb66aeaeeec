import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { ChatSession, type ChatEvent } from "../../src/cli/chat-session.js";
import { TopicType } from "../../src/core/subjects.js";
import { AgentReplyDeltaSchema, AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import { Host } from "../../src/host/host.js";
import type { Agent, AgentContext, AgentTypeDefinition, MessageContext } from "../../src/worker/agent.js";
import { Worker } from "../../src/worker/worker.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { expectSubscribeDenied } from "../helpers/permissions.js";
import { subjects, testLogger, withHostedSystem, type TestSystem } from "../helpers/system.js";

const WORDS = ["one ", "two ", "three ", "four ", "five ", "six ", "seven"];

/**
 * Streams its answer the way a bad network would deliver it: out of order, a part twice, one
 * part lost, plus parts of another turn and another session that the chat must not show.
 */
class JumbledDesk implements AgentTypeDefinition {
  readonly spec = create(AgentTypeSpecSchema, { type: "jumble", description: "Streams jumbled answers.", keywords: ["jumble"], examples: [], subscriptions: ["jumble"], routable: true });

  create(context: AgentContext): Agent {
    return {
      async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
        if (!isMessage(message, UserMessageSchema)) return undefined;
        const delta = (sequence: number, text: string, other: { turnId?: string; sessionId?: string } = {}) =>
          context.runtime.publishDelta(create(AgentReplyDeltaSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: "jumble", sequence, text, ...other }));
        delta(1, "stale ", { turnId: "t-earlier" });
        delta(2, WORDS[1] ?? "");
        delta(1, WORDS[0] ?? "");
        delta(1, WORDS[0] ?? "");
        delta(1, "elsewhere ", { sessionId: "s-other" });
        delta(3, WORDS[2] ?? "");
        delta(5, WORDS[4] ?? "");
        delta(4, WORDS[3] ?? "");
        // 6 is lost.
        delta(7, WORDS[6] ?? "");
        const reply = create(AgentReplySchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: "jumble", agentName: "jumble_desk", content: WORDS.join(""), turn: 1 });
        await context.runtime.publish(reply, { type: TopicType.UserProxy, source: { user: message.user, session: message.sessionId } }, { id: `${ctx.eventId}-reply` });
        return reply;
      },
    };
  }
}

/** Streams its answer slowly: a part every 400 ms, the whole answer after about 2.4 s. */
class SlowDesk implements AgentTypeDefinition {
  readonly spec = create(AgentTypeSpecSchema, { type: "slow", description: "Streams slow answers.", keywords: ["slowly"], examples: [], subscriptions: ["slow"], routable: true });

  create(context: AgentContext): Agent {
    return {
      async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
        if (!isMessage(message, UserMessageSchema)) return undefined;
        for (let sequence = 1; sequence <= WORDS.length - 1; sequence++) {
          await new Promise((resolve) => setTimeout(resolve, 400));
          context.runtime.publishDelta(create(AgentReplyDeltaSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: "slow", sequence, text: WORDS[sequence - 1] ?? "" }));
        }
        const reply = create(AgentReplySchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: "slow", agentName: "slow_desk", content: WORDS.join(""), turn: 1 });
        await context.runtime.publish(reply, { type: TopicType.UserProxy, source: { user: message.user, session: message.sessionId } }, { id: `${ctx.eventId}-reply` });
        return reply;
      },
    };
  }
}

describe("reply deltas in the chat session", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  const session = async (user: string, streamReplies: boolean) => {
    const chat = new ChatSession({ nc: await sys.connect(user), subjects, user, logger: sys.logger, replyTimeoutMs: 20_000, streamReplies });
    await chat.start();
    sys.closers.push(() => chat.close());
    return chat;
  };

  it("are shown in order, once each, up to a lost part, for this turn only; the reply then has it all", async () => {
    await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker([new JumbledDesk()]);
    const chat = await session("alice", true);
    const seen: ChatEvent[] = [];
    const events = await chat.send("please jumble this", (e) => seen.push(e));
    const deltas = seen.filter((e) => e.event === "delta");
    expect(deltas.map((d) => (d.event === "delta" ? d.text : ""))).toEqual(["one two ", "three ", "four five "]);
    expect(deltas.every((d) => d.event === "delta" && d.agent === "jumble" && d.session === chat.sessionId)).toBe(true);
    expect(events.at(-1)).toMatchObject({ event: "reply", content: "one two three four five six seven" });
  });

  it("keep a turn from timing out while its answer is still arriving, whether shown or not", async () => {
    await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker([new SlowDesk()]);
    for (const streamReplies of [true, false]) {
      // A time-out shorter than the whole answer, longer than the gap between its parts.
      const chat = new ChatSession({ nc: await sys.connect(`carol${String(streamReplies)}`), subjects, user: `carol${String(streamReplies)}`, logger: sys.logger, replyTimeoutMs: 1_500, streamReplies });
      await chat.start();
      sys.closers.push(() => chat.close());
      const events = await chat.send("please answer slowly");
      expect(events.at(-1), `streamReplies ${String(streamReplies)}`).toMatchObject({ event: "reply", content: WORDS.join("") });
    }
  });

  it("are not emitted to a client that did not ask for them, which still gets the whole reply", async () => {
    await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker([new JumbledDesk()]);
    const chat = await session("bob", false);
    const seen: ChatEvent[] = [];
    await chat.send("please jumble this", (e) => seen.push(e));
    expect(seen.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(seen.at(-1)).toMatchObject({ content: "one two three four five six seven" });
  });
});

/**
 * A chat against a server whose permissions predate reply deltas (the user may read its
 * responses, not `sb.delta.…`): streaming is refused, and the conversation goes on with whole replies.
 */
describe("reply deltas refused by the server's permissions", () => {
  let server: TestNatsServer;
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    await server?.stop();
  });

  it("leave the chat working, with whole replies", async () => {
    server = await TestNatsServer.start({
      requiresAuth: true,
      config: (dir) =>
        [
          `jetstream { store_dir: "${dir}/js" }`,
          "authorization {",
          "  users = [",
          '    { user: "system", password: "s3cret" }',
          '    { user: "alice", password: "pw", permissions: { subscribe: { allow: ["sb.topic.response.alice.*", "_INBOX.>"] } } }',
          "  ]",
          "}",
        ].join("\n"),
    });
    const logger = testLogger();
    const as = async (user: string, pass: string) => {
      const nc = await connect({ servers: server.url, user, pass });
      closers.push(() => nc.close());
      return nc;
    };
    const host = new Host({ nc: await as("system", "s3cret"), subjects, logger, heartbeatIntervalMs: 300, workerTtlMs: 3_000 });
    await host.start();
    closers.push(() => host.close());
    const worker = new Worker({ nc: await as("system", "s3cret"), subjects, logger, agents: [...builtinAgents(["router", "user_proxy"]), new JumbledDesk()], drainTimeoutMs: 3_000 });
    await worker.start();
    closers.push(() => worker.close());
    // The premise: this server refuses alice the delta subject.
    await expectSubscribeDenied(await as("alice", "pw"), subjects.userReplyDeltas("alice"));
    const chat = new ChatSession({ nc: await as("alice", "pw"), subjects, user: "alice", logger, replyTimeoutMs: 20_000, streamReplies: true });
    await chat.start();
    closers.push(() => chat.close());
    const seen: ChatEvent[] = [];
    await chat.send("please jumble this", (e) => seen.push(e));
    expect(seen.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(seen.at(-1)).toMatchObject({ content: "one two three four five six seven" });
  });
});
