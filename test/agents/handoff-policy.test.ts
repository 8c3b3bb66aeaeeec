import { describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import type { Classification, Classifier } from "../../src/router/classifier.js";
import { RouterAgentType } from "../../src/router/router-agent.js";
import { openChat } from "../helpers/chat.js";
import { withHostedSystem, type TestSystem } from "../helpers/system.js";

/**
 * A router that sends everything to one agent type, however the text reads — including a message
 * that agent just handed back, as a router that disagrees with the agent would.
 */
class AlwaysClassifier implements Classifier {
  constructor(private readonly agent: string) {}
  setProfiles(): void {}
  classify(): Classification {
    return { agent: this.agent, score: 1, intent: `always:${this.agent}`, ranked: [{ agent: this.agent, score: 1 }] };
  }
}

describe("when a task agent hands a session back", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("never hands off the first message of a session, and hands a turn off at most once", async () => {
    await sys.startWorker([new RouterAgentType({ classifier: new AlwaysClassifier("finance"), learning: false }), ...builtinAgents(["user_proxy"])]);
    // hr joins first, so finance's hand-off policy knows it from the start.
    await sys.startWorker(["hr"]);
    await sys.startWorker(["finance"]);
    const chat = await openChat(sys, "alice", 10_000);

    // Names only hr's keyword, but it is the message finance was chosen for: finance answers it.
    const first = await chat.send("How many vacation days does HR give me?");
    expect(first.map((e) => [e.event, "agent" in e ? e.agent : null, "from" in e ? (e.from ?? null) : null])).toEqual([
      ["routed", "finance", null],
      ["reply", "finance", null],
    ]);

    // A follow-up naming hr is handed back once; the router picks finance again, and finance answers
    // instead of handing it back a second time.
    const followUp = await chat.send("And what does HR say about next year?");
    expect(followUp.map((e) => [e.event, "agent" in e ? e.agent : null, "from" in e ? (e.from ?? null) : null])).toEqual([
      ["routed", "finance", "finance"],
      ["reply", "finance", null],
    ]);
    expect(followUp[1]).toMatchObject({ content: "Hello from finance_agent! You said: And what does HR say about next year?" });

    // The next turn is a new turn: it may be handed off again, once.
    const another = await chat.send("Can HR tell me about parental leave?");
    expect(another.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(another[0]).toMatchObject({ agent: "finance", from: "finance" });
  });
});
