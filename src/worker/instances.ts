import type { Message } from "@bufbuild/protobuf";
import type { Logger } from "../core/logging.js";
import type { Agent, AgentRuntime, AgentState, AgentTypeDefinition, MessageContext } from "./agent.js";
import { KeyedQueue } from "../core/keyed-queue.js";

/**
 * The live instances of one agent type in this worker: one per key, created lazily on the first
 * message for that key; messages for one key are handled one at a time.
 */
export class AgentInstances {
  private readonly agents = new Map<string, Agent>();
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

  /** Number of instances created so far and still held. */
  get size(): number {
    return this.agents.size;
  }

  deliver(key: string, message: Message, context: MessageContext): Promise<Message | undefined> {
    return this.queue.run(key, () => this.instance(key).onMessage(message, context));
  }

  private instance(key: string): Agent {
    let agent = this.agents.get(key);
    if (!agent) {
      const id = { type: this.type, key };
      agent = this.definition.create({ id, runtime: this.runtime, logger: this.logger.child({ agentKey: key }), state: this.stateFor(key) });
      this.agents.set(key, agent);
    }
    return agent;
  }
}
