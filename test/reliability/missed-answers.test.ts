import type { Subscription } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { openChat } from "../helpers/chat.js";
import { withHostedSystem, type TestSystem } from "../helpers/system.js";

/**
 * A live delivery can be missed without the chat noticing (a cluster node that held its interest
 * died, or interest had not reached the node the answer was published on). The answer is in the
 * stream all the same, and the chat must read it from there while the turn waits.
 */
describe("an answer the chat's subscription never received", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("is read from the stream while the turn waits, and shown once", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    const chat = await openChat(sys, "alice", 15_000);
    expect((await chat.send("I need help with my budget")).map((e) => e.event)).toEqual(["routed", "reply"]);
    // From here on nothing reaches the chat live: only the stream has the answer.
    (chat as unknown as { sub: Subscription }).sub.unsubscribe();
    const started = Date.now();
    const events = await chat.send("and the forecast?");
    expect(events.map((e) => e.event)).toEqual(["reply"]);
    expect(events[0]).toMatchObject({ agent: "finance", content: "Hello from finance_agent! You said: and the forecast?" });
    // Read back on the periodic check, well before the reply time-out.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
