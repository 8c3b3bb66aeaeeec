import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { KV } from "@nats-io/kv";
import { decodeBody, encodeBody } from "../core/codec.js";
import { isRevisionConflict, readSnapshot, writeAtRevision, type KeySnapshot } from "../core/kv-records.js";
import { retryTransientWrite } from "../core/publish.js";

/**
 * The state of one agent instance, kept in the `agent_state` bucket rather than in the worker's
 * memory, so that whichever worker receives the next message of a session continues from it.
 */
export interface AgentState {
  load<Desc extends DescMessage>(schema: Desc): Promise<MessageShape<Desc> | undefined>;
  /**
   * Read-modify-write: `mutate` gets the current state (or undefined) and returns the new one, or
   * undefined to leave it. Usually one round trip: the last revision this instance saw is
   * assumed current, and the read happens only when another worker has written since.
   */
  update<Desc extends DescMessage>(schema: Desc, mutate: (current: MessageShape<Desc> | undefined) => MessageShape<Desc> | undefined): Promise<MessageShape<Desc> | undefined>;
}

const MAX_ATTEMPTS = 10;

export class KvAgentState implements AgentState {
  /** What this instance last read or wrote; encoded, as each call names its own schema. */
  private cached: KeySnapshot<Uint8Array> | undefined;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    /** Ends retries early: the worker is giving up on its in-flight work. */
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * A write, tried again for as long as events are while the bucket cannot take it (its leader
   * is being elected, the client reconnecting). Failing at once would burn a delivery per attempt,
   * and a message's few deliveries can run out within one election on a busy cluster; the
   * handler's in-progress acks keep its message meanwhile.
   */
  private write(attempt: () => Promise<number>): Promise<number> {
    // A conflict is not retried here: update() rereads and mutates again.
    return retryTransientWrite(attempt, { signal: this.signal, isFinal: isRevisionConflict });
  }

  private async read(): Promise<KeySnapshot<Uint8Array>> {
    this.cached = await readSnapshot(this.kv, this.key);
    return this.cached;
  }

  async load<Desc extends DescMessage>(schema: Desc): Promise<MessageShape<Desc> | undefined> {
    const { value } = await this.read();
    return value ? decodeBody(schema, value) : undefined;
  }

  async update<Desc extends DescMessage>(
    schema: Desc,
    mutate: (current: MessageShape<Desc> | undefined) => MessageShape<Desc> | undefined,
  ): Promise<MessageShape<Desc> | undefined> {
    let snapshot = this.cached ?? (await this.read());
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const next = mutate(snapshot.value ? decodeBody(schema, snapshot.value) : undefined);
      if (!next) return undefined;
      const data = encodeBody(schema, next);
      try {
        const { revision: expected } = snapshot;
        const revision = await this.write(() => writeAtRevision(this.kv, this.key, data, expected));
        this.cached = { value: data, revision };
        return next;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
        snapshot = await this.read();
      }
    }
    throw new Error(`agent state ${this.key}: too many conflicting writes`);
  }
}
