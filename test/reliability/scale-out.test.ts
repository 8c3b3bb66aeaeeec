import { isMessage } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BUILTIN_PROFILES } from "../../src/agents/builtin.js";
import { TaskAgentType } from "../../src/agents/task-agent.js";
import { AgentReplySchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import type { Agent, AgentContext } from "../../src/worker/agent.js";
import { openChat } from "../helpers/chat.js";
import { watchResponses } from "../helpers/responses.js";
import { eventually, TestSystem } from "../helpers/system.js";
import type { Worker } from "../../src/worker/worker.js";

const finance = BUILTIN_PROFILES.find((p) => p.type === "finance")!;

/** The built-in finance agent, counting how many messages this worker's instances handled. */
class CountingFinance extends TaskAgentType {
  handled = 0;
  constructor() {
    super(finance, { delayMs: 5 });
  }
  override create(context: AgentContext): Agent {
    const inner = super.create(context);
    return {
      onMessage: async (message, ctx) => {
        const out = await inner.onMessage(message, ctx);
        this.handled++;
        return out;
      },
    };
  }
}

describe("scale-out", () => {
  let sys: TestSystem;
  beforeEach(async () => {
    sys = await TestSystem.start();
    await sys.startHost();
    await sys.startWorker(["router", "user_proxy"]);
  });
  afterEach(async () => {
    await sys.close();
  });

  it("spreads one agent type over its workers and loses nothing while workers join and leave", async () => {
    const types = [new CountingFinance(), new CountingFinance(), new CountingFinance()];
    const workers: Worker[] = [];
    for (const t of types) workers.push(await sys.startWorker([t]));
    const users = Array.from({ length: 12 }, (_, i) => `u${i}`);
    const observer = await sys.connect("observer");
    const wire = new Map(await Promise.all(users.map(async (u) => [u, await watchResponses(observer, u)] as const)));
    const turnsPerUser = 6;
    const joining = new CountingFinance();

    const conversations = users.map(async (user, i) => {
      const chat = await openChat(sys, user, 15_000);
      const finals = [];
      for (let turn = 0; turn < turnsPerUser; turn++) {
        const events = await chat.send(turn === 0 ? "I need help with my budget" : `follow-up ${turn}`);
        finals.push(events.at(-1));
        // Membership changes while conversations are in flight.
        if (i === 0 && turn === 2) await sys.startWorker([joining]);
        if (i === 1 && turn === 3) await workers[0]!.close();
      }
      return { user, finals, session: chat.sessionId };
    });
    const results = await Promise.all(conversations);

    const repliesOf = (user: string) => (wire.get(user) ?? []).flatMap((e) => (isMessage(e.message, AgentReplySchema) ? [e.message.turn] : []));
    // The observer's own connection may trail the chats' by a moment.
    await eventually(() => users.every((u) => repliesOf(u).length >= turnsPerUser), 5_000, "every reply seen by the observer");
    for (const r of results) {
      expect(r.finals.map((e) => e?.event)).toEqual(Array(turnsPerUser).fill("reply"));
      const turns = repliesOf(r.user);
      // Every turn answered once, counted in order across whichever workers took them.
      expect(turns).toEqual(Array.from({ length: turnsPerUser }, (_, k) => k + 1));
    }
    const spread = [...types, joining].map((t) => t.handled);
    expect(spread.reduce((a, b) => a + b, 0)).toBe(users.length * turnsPerUser);
    for (const n of spread.slice(0, 3)) expect(n).toBeGreaterThan(0);
    expect(joining.handled).toBeGreaterThan(0);
  });
});

