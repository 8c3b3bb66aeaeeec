import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { InvalidChoiceError } from "../../src/cli/chat-session.js";
import { TopicType } from "../../src/core/subjects.js";
import { AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import { HandoffSchema } from "../../src/gen/switchboard/v1/routing_pb.js";
import type { Agent, AgentContext, AgentTypeDefinition, MessageContext } from "../../src/worker/agent.js";
import { openChat } from "../helpers/chat.js";
import { RouterAgentType, USER_CHOICE_INTENT } from "../../src/router/router-agent.js";
import { eventually, withHostedSystem, TestSystem } from "../helpers/system.js";
import { twinDesks } from "../helpers/twin-desks.js";

/**
 * An agent that answers the first message of a session and hands back every later one that
 * mentions "elsewhere" — the smallest agent that uses the hand-off protocol.
 */
class HandingBackAgentType implements AgentTypeDefinition {
  readonly spec = create(AgentTypeSpecSchema, { type: "desk", description: "Reception: visitors, parcels and deliveries at the front desk.", keywords: ["front desk"], subscriptions: ["desk"], routable: true });

  create(context: AgentContext): Agent {
    return {
      async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
        if (!isMessage(message, UserMessageSchema) || !ctx.topic) return undefined;
        const source = { user: message.user, session: message.sessionId };
        if (message.text.includes("elsewhere")) {
          const handoff = create(HandoffSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, fromAgentType: "desk", text: message.text, reason: "test" });
          await context.runtime.publish(handoff, { type: TopicType.Default, source }, { id: `${ctx.eventId}-handoff` });
          return undefined;
        }
        const reply = create(AgentReplySchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: "desk", agentName: "desk_agent", content: `desk: ${message.text}` });
        await context.runtime.publish(reply, { type: TopicType.UserProxy, source }, { id: `${ctx.eventId}-reply` });
        return undefined;
      },
    };
  }
}

describe("clarify and hand-off through the real system", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("asks the user to choose between agents that fit equally, then routes the original message to the choice", async () => {
    await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker(twinDesks());
    const chat = await openChat(sys);

    const asked = await chat.send("Has the supplier invoice been paid?");
    expect(asked.map((e) => e.event)).toEqual(["clarify"]);
    const clarify = asked[0];
    if (clarify?.event !== "clarify") throw new Error("expected clarify");
    expect(clarify.options.map((o) => o.agent).sort()).toEqual(["desk-a", "desk-b"]);
    expect(clarify.options[0]).toMatchObject({ description: "Supplier invoices and payments." });
    expect(clarify.question).toMatch(/desk-a.*or.*desk-b|desk-b.*or.*desk-a/);
    expect(chat.agent).toBeUndefined();

    await expect(chat.answerClarification("3")).rejects.toBeInstanceOf(InvalidChoiceError);
    await expect(chat.answerClarification("legal")).rejects.toThrow(/not one of the options; answer 1 or desk-/);
    expect(chat.pendingClarification).toHaveLength(2);

    const second = clarify.options[1]!.agent;
    const answered = await chat.answerClarification("2");
    expect(answered.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(answered[0]).toMatchObject({ agent: second, intent: "user_choice", score: 1 });
    expect(answered[1]).toMatchObject({ agent: second, content: `Hello from ${second}_agent! You said: Has the supplier invoice been paid?` });
    expect(chat.agent).toBe(second);
    expect(chat.pendingClarification).toBeUndefined();

    // Follow-ups go straight to the chosen agent.
    const followUp = await chat.send("and the one from March?");
    expect(followUp.map((e) => [e.event, "agent" in e ? e.agent : null])).toEqual([["reply", second]]);
  });

  it("accepts the agent type name as the answer, in any case", async () => {
    await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker(twinDesks());
    const chat = await openChat(sys);
    await chat.send("Has the supplier invoice been paid?");
    const answered = await chat.answerClarification("DESK-A");
    expect(answered[0]).toMatchObject({ event: "routed", agent: "desk-a" });
  });

  it("routes afresh when the chosen agent type's only worker stops before the answer arrives", async () => {
    const router = new RouterAgentType();
    await sys.startWorker([router, ...builtinAgents(["user_proxy"])]);
    const [deskA, deskB] = twinDesks();
    await sys.startWorker([deskA!]);
    const leaving = await sys.startWorker([deskB!]);
    const chat = await openChat(sys);

    const asked = await chat.send("Has the supplier invoice been paid?");
    expect(asked.map((e) => e.event)).toEqual(["clarify"]);

    await leaving.close();
    await eventually(() => !router.routableProfiles().some((p) => p.type === "desk-b"), 10_000, "the router to forget desk-b");

    // The user still picks desk-b; the router does not send the message where nobody can answer it.
    const answered = await chat.answerClarification("desk-b");
    expect(answered.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(answered[0]).toMatchObject({ agent: "desk-a" });
    expect(answered[0]).not.toMatchObject({ intent: USER_CHOICE_INTENT });
    expect(answered[1]).toMatchObject({ agent: "desk-a", content: "Hello from desk-a_agent! You said: Has the supplier invoice been paid?" });
    expect(chat.agent).toBe("desk-a");
  });

  it("re-routes a session an agent hands back, and the chat follows the new agent", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    await sys.startWorker([new HandingBackAgentType()]);
    const chat = await openChat(sys);
    const first = await chat.send("Is there a parcel for me at the front desk?");
    expect(first[0]).toMatchObject({ event: "routed", agent: "desk" });
    expect(first[1]).toMatchObject({ event: "reply", content: "desk: Is there a parcel for me at the front desk?" });

    const handed = await chat.send("this belongs elsewhere: how many vacation days do I have left?");
    expect(handed.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(handed[0]).toMatchObject({ agent: "hr", from: "desk" });
    expect(handed[1]).toMatchObject({ agent: "hr", content: "Hello from hr_agent! You said: this belongs elsewhere: how many vacation days do I have left?" });
    expect(chat.agent).toBe("hr");

    const next = await chat.send("and next year?");
    expect(next).toEqual([expect.objectContaining({ event: "reply", agent: "hr" })]);
  });

  it("tells the user when nothing fits a handed-back message, and routes the next message afresh", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    await sys.startWorker([new HandingBackAgentType()]);
    const chat = await openChat(sys);
    expect((await chat.send("Is there a parcel for me at the front desk?"))[0]).toMatchObject({ agent: "desk" });
    const handed = await chat.send("elsewhere: my laptop screen is flickering");
    expect(handed).toEqual([expect.objectContaining({ event: "no_agent" })]);
    expect(chat.agent).toBeUndefined();
    expect((await chat.send("I need help with my budget"))[0]).toMatchObject({ event: "routed", agent: "finance" });
  });

  it("lets a built-in agent hand a follow-up that names only another agent type back to the router", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    const chat = await openChat(sys);
    expect((await chat.send("I need help with my budget"))[0]).toMatchObject({ event: "routed", agent: "finance" });
    // Names finance's keyword too: finance keeps it.
    expect(await chat.send("what is the budget of the hr team?")).toEqual([expect.objectContaining({ event: "reply", agent: "finance" })]);

    const handed = await chat.send("Actually, can HR tell me my remaining vacation days?");
    expect(handed.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(handed[0]).toMatchObject({ agent: "hr", from: "finance", intent: "keyword:hr" });
    expect(handed[1]).toMatchObject({ agent: "hr", content: "Hello from hr_agent! You said: Actually, can HR tell me my remaining vacation days?" });
    expect(await chat.send("and for next year?")).toEqual([expect.objectContaining({ event: "reply", agent: "hr" })]);
  });
});
