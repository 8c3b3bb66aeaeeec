import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openChat } from "../helpers/chat.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { eventually, TestSystem } from "../helpers/system.js";

describe("nats-server restarted (single node, file storage)", () => {
  let server: TestNatsServer;
  let sys: TestSystem;
  beforeAll(async () => {
    server = await TestNatsServer.start();
    sys = TestSystem.on(server.url);
  });
  afterAll(async () => {
    await sys.close();
    await server.stop();
  });

  it("reconnects everyone by themselves, delivers what was stored before, and continues sessions", async () => {
    await sys.startHost();
    await sys.startWorker(["router", "user_proxy"]);
    const finance = await sys.startWorker(["finance"]);
    const chat = await openChat(sys, "alice", 20_000);
    expect((await chat.send("I need help with my budget")).map((e) => e.event)).toEqual(["routed", "reply"]);

    // A message that waits durably: finance has no worker while the server goes down.
    await finance.close();
    const pending = chat.send("a question stored before the restart");
    await eventually(async () => (await sys.hostClient()).agents().then((a) => a.find((x) => x.spec?.type === "finance")?.available === false), 5_000, "finance unavailable");
    await new Promise((r) => setTimeout(r, 500));

    await server.kill();
    await new Promise((r) => setTimeout(r, 500));
    await server.restart();
    await sys.startWorker(["finance"]);

    const events = await pending;
    expect(events.at(-1)).toMatchObject({ event: "reply", content: "Hello from finance_agent! You said: a question stored before the restart" });
    expect((await chat.send("and after it?")).at(-1)).toMatchObject({ event: "reply", agent: "finance" });
    const admin = await sys.hostClient();
    const session = await eventually(async () => {
      const s = await admin.session(chat.sessionId);
      return s && s.turns === 3 ? s : undefined;
    }, 10_000, "session with three turns");
    expect(session.agentType).toBe("finance");
  });
});
