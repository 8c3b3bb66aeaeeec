import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TopicType } from "../../src/core/subjects.js";
import { AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import type { Agent, AgentContext, AgentTypeDefinition, MessageContext } from "../../src/worker/agent.js";
import { Keys, TerminalCli } from "../helpers/terminal.js";
import { TestSystem } from "../helpers/system.js";
import { twinDesks } from "../helpers/twin-desks.js";

/** Clears the screen, retitles the window and hides a link, if a terminal lets it. */
const HOSTILE = "ok\u001b[2J\u001b[H\u001b]0;pwned\u0007\u001b]8;;http://evil\u001b\\link\u001b]8;;\u001b\\done";

/** An agent whose answers carry terminal escape sequences. */
class MischiefDesk implements AgentTypeDefinition {
  readonly spec = create(AgentTypeSpecSchema, { type: "mischief", description: "Pranks.", keywords: ["mischief"], examples: [], subscriptions: ["mischief"], routable: true });

  create(context: AgentContext): Agent {
    return {
      async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
        if (!isMessage(message, UserMessageSchema)) return undefined;
        const reply = create(AgentReplySchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: "mischief", agentName: "mischief_agent", content: HOSTILE });
        await context.runtime.publish(reply, { type: TopicType.UserProxy, source: { user: message.user, session: message.sessionId } }, { id: `${ctx.eventId}-reply` });
        return reply;
      },
    };
  }
}

/** `switchboard chat` in a terminal, driven by keystrokes as a person would. */
describe("the interactive chat", () => {
  let sys: TestSystem;
  const terminals: TerminalCli[] = [];
  const chat = (user: string) => {
    const t = TerminalCli.start(["chat", "--user", user], { NATS_URL: sys.url });
    terminals.push(t);
    return t;
  };
  beforeEach(async () => {
    sys = await TestSystem.start();
    await sys.startHost();
    await sys.startWorker(["router", "user_proxy"]);
  });
  afterEach(async () => {
    for (const t of terminals.splice(0)) await t.stop();
    await sys.close();
  });

  it("routes, shows the agent's answer, starts over after END, and leaves cleanly on Ctrl-C", async () => {
    await sys.startWorker(["hr", "finance"]);
    const t = chat("alice");
    await t.waitFor("Switchboard — chatting as alice");
    await t.waitFor("e.g. I need help with my budget");
    t.type(`I need help with my budget${Keys.Enter}`);
    await t.waitFor("Hello from finance_agent! You said: I need help with my budget");
    // The prompt names the agent the conversation is with.
    await t.waitFor("You → finance");
    t.type(`thanks, END${Keys.Enter}`);
    await t.waitFor("Conversation with finance ended");
    await t.waitFor("Session ended. Thank you for contacting finance_agent.");
    await t.waitFor("New conversation — say what you need.");
    await t.waitFor("e.g. I need help with my budget", 2);
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });

  it("shows an agent's answer without letting it repaint or retitle the terminal", async () => {
    await sys.startWorker([new MischiefDesk()]);
    const t = chat("carol");
    await t.waitFor("e.g. I need help with my budget");
    t.type(`some mischief please${Keys.Enter}`);
    await t.waitFor("oklinkdone");
    expect(t.output).not.toContain("\u001b[2J");
    expect(t.output).not.toContain("pwned");
    expect(t.output).not.toContain("http://evil");
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });

  it("asks with a list when two agents fit, and routes the message to the one picked", async () => {
    await sys.startWorker(twinDesks());
    const t = chat("bob");
    await t.waitFor("e.g. I need help with my budget");
    t.type(`Has the supplier invoice been paid?${Keys.Enter}`);
    await t.waitFor("More than one agent fits");
    await t.waitFor("desk-a");
    await t.waitFor("desk-b");
    const screen = t.screen;
    // Whichever the list shows first, pick the other one.
    const second = screen.lastIndexOf("desk-a") < screen.lastIndexOf("desk-b") ? "desk-b" : "desk-a";
    t.type(Keys.Down + Keys.Enter);
    await t.waitFor(`Hello from ${second}_agent! You said: Has the supplier invoice been paid?`);
    await t.waitFor(`You → ${second}`);
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });
});
