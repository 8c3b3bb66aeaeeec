import { describe, expect, it } from "vitest";
import { TaskAgentType } from "../../src/agents/task-agent.js";
import { openChat } from "../helpers/chat.js";
import { withHostedSystem, TestSystem } from "../helpers/system.js";

describe("router on a real registry", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("routes by keyword, then sends follow-ups straight to the assigned agent", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    const chat = await openChat(sys);
    const first = await chat.send("How much money is left in our department's budget?");
    expect(first.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(first[0]).toMatchObject({ agent: "finance", intent: "keyword:money" });
    // The hybrid classifier's calibrated confidence: a keyword in a request about its topic is
    // well above the threshold (0.5).
    expect(first[0]?.event === "routed" && first[0].score).toBeGreaterThan(0.9);
    expect(chat.agent).toBe("finance");
    // No keyword, but the session belongs to finance now.
    const second = await chat.send("and what about last week?");
    expect(second.map((e) => e.event)).toEqual(["reply"]);
    expect(second[0]).toMatchObject({ agent: "finance", content: "Hello from finance_agent! You said: and what about last week?" });
  });

  it("answers an unroutable message by naming the available agents and routes the next one afresh", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    const chat = await openChat(sys);
    const [noAgent] = await chat.send("three people are waiting outside");
    expect(noAgent).toMatchObject({ event: "no_agent", available: ["finance", "hr"] });
    expect(noAgent?.event === "no_agent" && noAgent.message).toMatch(/finance.*hr/);
    const retry = await chat.send("ok then, an employee question");
    expect(retry[0]).toMatchObject({ event: "routed", agent: "hr" });
  });

  it("never routes to an agent type without a live worker, and picks up a new type without restarting", async () => {
    await sys.startWorker(["router", "user_proxy", "hr"]);
    const chat = await openChat(sys);
    const before = await chat.send("budget question");
    expect(before[0]).toMatchObject({ event: "no_agent", available: ["hr"] });

    const legal = new TaskAgentType({ type: "legal", description: "Legal: contracts and compliance.", keywords: ["contract", "legal"], examples: [] });
    const legalWorker = await sys.startWorker([legal]);
    const financeWorker = await sys.startWorker(["finance"]);
    const started = Date.now();
    let events = await chat.send("budget question");
    while (events[0]?.event !== "routed" && Date.now() - started < 1_000) events = await chat.send("budget question");
    expect(events[0]).toMatchObject({ event: "routed", agent: "finance" });
    chat.newSession();
    expect((await chat.send("please review this contract"))[0]).toMatchObject({ event: "routed", agent: "legal" });

    await financeWorker.close();
    await legalWorker.close();
    // The router learns of the departures through the registry bucket a moment after the host
    // records them; until then it may still name them as available, but never routes to them.
    const stopped = Date.now();
    let after: Awaited<ReturnType<typeof chat.send>>;
    do {
      chat.newSession();
      after = await chat.send("budget question");
      expect(after[0]?.event).toBe("no_agent");
    } while (after[0]?.event === "no_agent" && after[0].available.length > 1 && Date.now() - stopped < 5_000);
    expect(after[0]).toMatchObject({ event: "no_agent", available: ["hr"] });
  });
});
