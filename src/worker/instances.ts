import type { Message } from "@bufbuild/protobuf";
import type { Logger } from "../core/logging.js";
import type { Agent, AgentRuntime, AgentState, AgentTypeDefinition, MessageContext } from "./agent.js";
import { KeyedQueue } from "../core/keyed-queue.js";

interface Held {
  readonly agent: Agent;
  lastUsedMs: number;
}

/**
 * The live instances of one agent type in this worker: one per key, created lazily on the first
 * message for that key, dropped after a while without messages (their state is in KV, so a later
 * message simply creates the instance again); messages for one key are handled one at a time.
 * A stateless type has a single instance for every key.
 */
export class AgentInstances {
  private readonly agents = new Map<string, Held>();
  private shared: Agent | undefined;
  private readonly queue = new KeyedQueue();

  constructor(
    readonly definition: AgentTypeDefinition,
    private readonly runtime: AgentRuntime,
    private readonly logger: Logger,
    private readonly stateFor: (key: string) => AgentState,
  ) {}

  get type(): string {
    return this.definition.spec.type;
  }

  /** Number of per-key instances held. */
  get size(): number {
    return this.agents.size;
  }

  deliver(key: string, message: Message, context: MessageContext): Promise<Message | undefined> {
    return this.queue.run(key, () => this.instance(key).onMessage(message, context));
  }

  /** Drops instances idle since before `cutoffMs`; returns how many. */
  evictIdle(cutoffMs: number): number {
    let evicted = 0;
    for (const [key, held] of this.agents) {
      if (held.lastUsedMs < cutoffMs) {
        this.agents.delete(key);
        evicted++;
      }
    }
    return evicted;
  }

  private instance(key: string): Agent {
    if (this.definition.stateless) {
      this.shared ??= this.create(key);
      return this.shared;
    }
    const now = Date.now();
    const held = this.agents.get(key);
    if (held) {
      held.lastUsedMs = now;
      return held.agent;
    }
    const agent = this.create(key);
    this.agents.set(key, { agent, lastUsedMs: now });
    return agent;
  }

  private create(key: string): Agent {
    // The type's logger, not a child per key: instances are many and cheap; agents log their ids.
    return this.definition.create({ id: { type: this.type, key }, runtime: this.runtime, logger: this.logger, state: this.stateFor(key) });
  }
}
