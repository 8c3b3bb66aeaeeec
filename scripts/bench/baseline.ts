import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient } from "@nats-io/jetstream";
import { headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { DEFAULT_INFRASTRUCTURE } from "../../src/host/infrastructure.js";
import type { ClientConnections } from "./connections.js";
import type { SimulatedUser, TurnOutcome, TurnStep, UserFactory } from "./load.js";
import { AGENT_TOPIC, Hop, HOPS, Kind, KIND_HEADER, RELAY_CONSUMER, RELAY_PREFIX, RELAY_STREAM, relayDurable, relayFilter, relaySubject, TURN_HEADER, type RelayMode } from "./relay-protocol.js";
import { END_MESSAGE, FIRST_MESSAGE, followupMessage } from "./switchboard-users.js";

const ms = (n: number) => n * 1_000_000;

/**
 * The durable baseline's stream and consumers, configured like Switchboard's event stream
 * (src/host/infrastructure.ts) and topic consumers (src/worker/topic-consumer.ts).
 */
export async function createRelayStream(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: RELAY_STREAM,
    subjects: [`${RELAY_PREFIX.durable}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: 1,
    max_age: ms(DEFAULT_INFRASTRUCTURE.eventMaxAgeMs),
    duplicate_window: ms(DEFAULT_INFRASTRUCTURE.duplicateWindowMs),
  });
  for (const hop of HOPS) {
    await jsm.consumers.add(RELAY_STREAM, {
      durable_name: relayDurable(hop),
      filter_subject: relayFilter("durable", hop),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      ack_wait: ms(RELAY_CONSUMER.ackWaitMs),
      max_deliver: RELAY_CONSUMER.maxDeliver,
      max_ack_pending: RELAY_CONSUMER.maxAckPending,
    });
  }
}

interface Pending {
  readonly turn: string;
  readonly resolve: (outcome: TurnOutcome) => void;
}

/**
 * Simulated users of a relay chain: the same messages and the same wait-for-the-final-event
 * rule as the Switchboard users, with a core-NATS subscription for responses in both modes.
 */
export class RelayUsers implements UserFactory {
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly mode: RelayMode,
    private readonly connections: ClientConnections,
    private readonly runTag: string,
    private readonly timeoutMs: number,
  ) {}

  async create(index: number): Promise<SimulatedUser> {
    const user = `${this.runTag}u${index}`;
    const nc = await this.connections.get(user);
    const js: JetStreamClient | undefined = this.mode === "durable" ? jetstream(nc) : undefined;
    let pending: Pending | undefined;
    let sessionNo = 0;
    let turnNo = 0;
    const sub = nc.subscribe(relaySubject(this.mode, "response", user, "*"), {
      callback: (err, m: Msg) => {
        if (err || !pending) return;
        if (m.headers?.get(KIND_HEADER) !== Kind.Reply || m.headers.get(TURN_HEADER) !== pending.turn) return;
        pending.resolve({ kind: "ok" });
      },
    });
    await nc.flush();
    const turn = async (step: TurnStep, i: number): Promise<TurnOutcome> => {
      const session = `s${sessionNo}`;
      const turnId = `t${++turnNo}`;
      const topicType = step === "first" ? Hop.Router : AGENT_TOPIC;
      const text = step === "first" ? FIRST_MESSAGE : step === "end" ? END_MESSAGE : followupMessage(i);
      const h = headers();
      h.set(TURN_HEADER, turnId);
      h.set(KIND_HEADER, Kind.Message);
      let timer: NodeJS.Timeout | undefined;
      const answered = new Promise<TurnOutcome>((resolve) => {
        pending = { turn: turnId, resolve };
        timer = setTimeout(() => resolve({ kind: "lost", detail: `no answer within ${this.timeoutMs} ms` }), this.timeoutMs);
      });
      try {
        const subject = relaySubject(this.mode, topicType, user, session);
        const data = this.encoder.encode(text);
        if (js) await js.publish(subject, data, { headers: h, msgID: `${user}-${session}-${turnId}`, retries: 5 });
        else nc.publish(subject, data, { headers: h });
        const outcome = await answered;
        if (step === "end") sessionNo++;
        return outcome;
      } catch (err) {
        return { kind: "error", detail: err instanceof Error ? err.message : String(err) };
      } finally {
        clearTimeout(timer);
        pending = undefined;
      }
    };
    return {
      turn,
      reset: () => {
        sessionNo++;
      },
      close: async () => {
        if (!sub.isClosed()) await sub.drain();
      },
    };
  }
}
