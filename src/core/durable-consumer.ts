import { AckPolicy, JetStreamApiError, type ConsumerUpdateConfig, type DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";

export interface DurableConsumerSpec {
  readonly stream: string;
  readonly name: string;
  readonly filterSubject: string;
  readonly deliverPolicy: DeliverPolicy;
  /** Settings that may change between versions or deployments; applied to an existing consumer too. */
  readonly tunables: Partial<ConsumerUpdateConfig>;
}

/**
 * Creates an explicit-ack durable pull consumer, or brings an existing one's tunable settings up
 * to date. Idempotent, so every process that shares the consumer can call it at start.
 */
export async function ensureDurableConsumer(jsm: JetStreamManager, spec: DurableConsumerSpec): Promise<void> {
  try {
    await jsm.consumers.add(spec.stream, {
      durable_name: spec.name,
      filter_subject: spec.filterSubject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: spec.deliverPolicy,
      ...spec.tunables,
    });
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    await jsm.consumers.update(spec.stream, spec.name, spec.tunables);
  }
}
