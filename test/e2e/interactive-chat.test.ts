import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TopicType } from "../../src/core/subjects.js";
import { AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import type { Agent, AgentContext, AgentTypeDefinition, MessageContext } from "../../src/worker/agent.js";
import { Keys, TerminalCli } from "../helpers/terminal.js";
import { TestSystem } from "../helpers/system.js";
import { TestNatsServer } from "../helpers/nats-server.js";
import { twinDesks } from "../helpers/twin-desks.js";
import { TaskAgentType } from "../../src/agents/task-agent.js";

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

/** A desk that takes its time: longer than the chat waits in the tests that use it. */
const slowDesk = (delayMs: number) => new TaskAgentType({ type: "slowdesk", description: "Slow questions.", keywords: ["slowly"], examples: [] }, { delayMs });

/** `switchboard chat` in a terminal, driven by keystrokes as a person would. */
describe("the interactive chat", () => {
  let sys: TestSystem;
  const terminals: TerminalCli[] = [];
  const chat = (user: string, ...args: string[]) => {
    const t = TerminalCli.start(["chat", "--user", user, ...args], { NATS_URL: sys.url });
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

  it("keeps what is typed while an answer is awaited for the next prompt, without echoing it", async () => {
    await sys.startWorker([slowDesk(2_000)]);
    const t = chat("tess");
    await t.waitFor("what do you need help with?");
    t.type(`please answer slowly${Keys.Enter}`);
    await t.waitFor("Routing");
    t.type("and one more");
    await t.waitFor("Hello from slowdesk_agent! You said: please answer slowly", 1, 20_000);
    await t.waitFor("You → slowdesk");
    // Not echoed while the spinner ran; on the prompt, ready to finish and send.
    expect(t.screen.split("and one more").length - 1).toBe(1);
    t.type(` thing${Keys.Enter}`);
    await t.waitFor("You said: and one more thing", 1, 20_000);
  });

  it("routes, shows the agent's answer, starts over after END, and leaves cleanly on Ctrl-C", async () => {
    await sys.startWorker(["hr", "finance"]);
    const t = chat("alice");
    await t.waitFor("Switchboard — chatting as alice");
    await t.waitFor("what do you need help with?");
    t.type(`I need help with my budget${Keys.Enter}`);
    await t.waitFor("Hello from finance_agent! You said: I need help with my budget");
    // The prompt names the agent the conversation is with.
    await t.waitFor("You → finance");
    t.type(`thanks, END${Keys.Enter}`);
    await t.waitFor("Conversation with finance ended");
    await t.waitFor("Session ended. Thank you for contacting finance_agent.");
    await t.waitFor("New conversation — say what you need.");
    await t.waitFor("what do you need help with?", 2);
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });

  it("shows an agent's answer without letting it repaint or retitle the terminal", async () => {
    await sys.startWorker([new MischiefDesk()]);
    const t = chat("carol");
    await t.waitFor("what do you need help with?");
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
    await t.waitFor("what do you need help with?");
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

  it("clears the line on Esc and leaves only on a second Ctrl-C, or one at an empty prompt", async () => {
    await sys.startWorker(["hr", "finance"]);
    const t = chat("dave");
    await t.waitFor("what do you need help with?");
    t.type("something I did not mean");
    await t.waitFor("something I did not mean");
    t.type(Keys.Esc);
    // The prompt comes back empty, and what is typed next is sent alone.
    await t.waitFor("what do you need help with?", 2);
    t.type(Keys.Esc);
    await t.waitFor("what do you need help with?", 3);
    t.type(`I need help with my budget${Keys.Enter}`);
    await t.waitFor("Hello from finance_agent! You said: I need help with my budget");
    t.type("half a thought");
    await t.waitFor("half a thought");
    t.type(Keys.CtrlC);
    await t.waitFor("Press Ctrl-C again to leave.");
    expect(t.screen).not.toContain("Bye.");
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });

  it("closes the list of agents on Esc and goes on chatting", async () => {
    await sys.startWorker(twinDesks());
    const t = chat("erin");
    await t.waitFor("what do you need help with?");
    t.type(`Has the supplier invoice been paid?${Keys.Enter}`);
    await t.waitFor("Which agent should take it?");
    await t.waitFor("desk-b");
    t.type(Keys.Esc);
    await t.waitFor("No agent chosen.");
    await t.waitFor("what do you need help with?", 2);
    t.type(`Has the supplier invoice been paid?${Keys.Enter}`);
    // The list is drawn again (the first one's closed frame also says "Which agent").
    await t.waitFor("to navigate", 2);
    t.type(Keys.Enter);
    await t.waitFor("_agent! You said: Has the supplier invoice been paid?");
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });

  it("shows an answer that comes after its time-out, saying what it answers", async () => {
    await sys.startWorker([slowDesk(4_000)]);
    const t = chat("frank", "--timeout", "1500");
    await t.waitFor("what do you need help with?");
    t.type(`please answer slowly${Keys.Enter}`);
    await t.waitFor("No answer yet");
    await t.waitFor("no answer from the slowdesk agent within 1.5 s");
    // The chat is free meanwhile; the answer appears when it comes, on its own.
    await t.waitFor("Late answer to “please answer slowly” from slowdesk_agent:", 1, 20_000);
    await t.waitFor("Hello from slowdesk_agent! You said: please answer slowly");
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });

  it("says so when an agent hands the conversation to another", async () => {
    await sys.startWorker(["hr", "finance"]);
    const t = chat("grace");
    await t.waitFor("what do you need help with?");
    t.type(`I need help with my budget${Keys.Enter}`);
    await t.waitFor("Hello from finance_agent! You said: I need help with my budget");
    t.type(`Actually, can HR tell me my remaining vacation days?${Keys.Enter}`);
    await t.waitFor("↪ finance handed you to hr");
    await t.waitFor("Hello from hr_agent! You said: Actually, can HR tell me my remaining vacation days?");
    await t.waitFor("You → hr");
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });

  it("echoes a long message in short and keeps answers inside the border", async () => {
    await sys.startWorker(["hr", "finance"]);
    const t = chat("heidi");
    await t.waitFor("what do you need help with?");
    const long = `budget ${"numbers and more numbers ".repeat(200)}`.trim();
    t.type(`${long}${Keys.Enter}`);
    await t.waitFor("Hello from finance_agent!", 1, 20_000);
    await t.waitFor(`(${long.length.toLocaleString("en-US")} characters)`);
    await t.waitFor("You → finance");
    // The terminal is 120 columns wide: the answer (which repeats the message) is wrapped inside
    // the border, every line of it starting with the border.
    const answer = t.screen.slice(t.screen.indexOf("Hello from finance_agent!"), t.screen.lastIndexOf("You → finance"));
    const lines = answer.split(/\r?\n/).filter((l) => l.includes("numbers"));
    expect(lines.length).toBeGreaterThan(30);
    expect(lines.filter((l) => l.length > 120)).toEqual([]);
    expect(lines.slice(1).filter((l) => !l.startsWith("│  "))).toEqual([]);
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });
});

describe("the interactive chat and its server", () => {
  let server: TestNatsServer;
  let sys: TestSystem;
  let t: TerminalCli | undefined;
  beforeEach(async () => {
    server = await TestNatsServer.start();
    sys = TestSystem.on(server.url);
    await sys.startHost();
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
  });
  afterEach(async () => {
    await t?.stop();
    await sys.close();
    await server.stop();
  });

  it("says when the connection is lost and when it is back, without waiting for a message", async () => {
    t = TerminalCli.start(["chat", "--user", "nina"], { NATS_URL: server.url });
    await t.waitFor("what do you need help with?");
    t.type("typed before the outage");
    await t.waitFor("typed before the outage");
    await server.kill();
    await t.waitFor("Lost the connection to NATS; reconnecting…");
    await server.restart();
    await t.waitFor("Reconnected to NATS.", 1, 30_000);
    // What was being typed is still there; the message goes through.
    t.type(`, budget${Keys.Enter}`);
    await t.waitFor("Hello from finance_agent! You said: typed before the outage, budget", 1, 30_000);
    t.type(Keys.CtrlC);
    await t.waitFor("Bye.");
    expect(await t.exited).toBe(0);
  });
});
