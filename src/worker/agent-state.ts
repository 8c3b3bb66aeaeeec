import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import { decodeBody, encodeBody } from "../core/codec.js";

/**
 * The state of one agent instance, kept in the `agent_state` bucket rather than in the worker's
 * memory, so that whichever worker receives the next message of a session continues from it.
 */
export interface AgentState {
  load<Desc extends DescMessage>(schema: Desc): Promise<MessageShape<Desc> | undefined>;
  save<Desc extends DescMessage>(schema: Desc, value: MessageShape<Desc>): Promise<void>;
}

export class KvAgentState implements AgentState {
  constructor(
    private readonly kv: KV,
    private readonly key: string,
  ) {}

  async load<Desc extends DescMessage>(schema: Desc): Promise<MessageShape<Desc> | undefined> {
    const entry = await this.kv.get(this.key);
    return entry && entry.operation === "PUT" ? decodeBody(schema, entry.value) : undefined;
  }

  async save<Desc extends DescMessage>(schema: Desc, value: MessageShape<Desc>): Promise<void> {
    await this.kv.put(this.key, encodeBody(schema, value));
  }
}
