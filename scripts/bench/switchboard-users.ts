import { ChatSession, type ChatEvent } from "../../src/cli/chat-session.js";
import type { Logger } from "../../src/core/logging.js";
import type { Subjects } from "../../src/core/subjects.js";
import type { ClientConnections } from "./connections.js";
import type { SimulatedUser, TurnOutcome, TurnStep, UserFactory } from "./load.js";

/** What the simulated users say; the first message routes by keyword to the finance agent. */
export const FIRST_MESSAGE = "I need help with my budget";
export const END_MESSAGE = "END";
export function followupMessage(index: number): string {
  return `Follow-up ${index}: can you also check the travel expenses for March?`;
}

const EXPECTED_FINAL: Readonly<Record<TurnStep, ChatEvent["event"]>> = { first: "reply", followup: "reply", end: "ended" };

/** Simulated users that talk to Switchboard exactly as the chat client does: through ChatSession. */
export class SwitchboardUsers implements UserFactory {
  constructor(
    private readonly connections: ClientConnections,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
    /** Makes user names unique per run, so runs never see each other's responses. */
    private readonly runTag: string,
    private readonly timeoutMs: number,
  ) {}

  async create(index: number): Promise<SimulatedUser> {
    const user = `${this.runTag}u${index}`;
    const nc = await this.connections.get(user);
    const chat = new ChatSession({ nc, subjects: this.subjects, user, logger: this.logger, replyTimeoutMs: this.timeoutMs });
    await chat.start();
    return {
      turn: async (step, i) => outcomeOf(step, await chat.send(step === "first" ? FIRST_MESSAGE : step === "end" ? END_MESSAGE : followupMessage(i))),
      reset: () => chat.newSession(),
      close: () => chat.close(),
    };
  }
}

function outcomeOf(step: TurnStep, events: readonly ChatEvent[]): TurnOutcome {
  const last = events[events.length - 1];
  if (!last) return { kind: "error", detail: "no event" };
  if (last.event === EXPECTED_FINAL[step]) return { kind: "ok" };
  if (last.event === "timeout") return { kind: "lost", detail: last.message };
  const detail = last.event === "error" ? `${last.code}: ${last.message}` : last.event === "no_agent" ? `no_agent: ${last.message}` : `unexpected final event ${last.event}`;
  return { kind: "error", detail };
}
