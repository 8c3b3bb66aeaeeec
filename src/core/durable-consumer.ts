import { AckPolicy, JetStreamApiError, type ConsumerUpdateConfig, type DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";

export interface DurableConsumerSpec {
  readonly stream: string;
  readonly name: string;
  readonly filterSubject: string;
  readonly deliverPolicy: DeliverPolicy;
  /** Settings that may change between versions or deployments; applied to an existing consumer too. */
  readonly tunables: Partial<ConsumerUpdateConfig>;
}

/** A tunable setting an existing consumer had otherwise, before this process changed it. */
export interface ReplacedSetting {
  readonly name: string;
  readonly was: unknown;
  readonly now: unknown;
}

/**
 * Creates an explicit-ack durable pull consumer, or brings an existing one's tunable settings up
 * to date. Idempotent, so every process that shares the consumer can call it at start. Returns
 * the settings it changed on an existing consumer: every process sharing it now works with them.
 */
export async function ensureDurableConsumer(jsm: JetStreamManager, spec: DurableConsumerSpec): Promise<ReplacedSetting[]> {
  const before = await existingSettings(jsm, spec);
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
  if (!before) return [];
  return Object.entries(spec.tunables).flatMap(([name, now]) => (before[name] !== now ? [{ name, was: before[name], now }] : []));
}

/** The consumer's settings when it exists already; undefined when this process creates it. */
async function existingSettings(jsm: JetStreamManager, spec: DurableConsumerSpec): Promise<Readonly<Record<string, unknown>> | undefined> {
  try {
    return (await jsm.consumers.info(spec.stream, spec.name)).config as unknown as Readonly<Record<string, unknown>>;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === CONSUMER_NOT_FOUND) return undefined;
    throw err;
  }
}

const CONSUMER_NOT_FOUND = 10014;
