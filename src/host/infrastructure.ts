import { JetStreamApiError, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "../core/subjects.js";

export interface InfrastructureOptions {
  readonly replicas: number;
  /** How long events stay in the stream; the host's session state is derived from them. */
  readonly eventMaxAgeMs: number;
  /** Window in which a re-published event id is stored only once. */
  readonly duplicateWindowMs: number;
}

export const DEFAULT_INFRASTRUCTURE: InfrastructureOptions = {
  replicas: 1,
  eventMaxAgeMs: 7 * 24 * 3600_000,
  duplicateWindowMs: 2 * 60_000,
};

export interface Buckets {
  readonly agents: KV;
  readonly workers: KV;
  readonly sessions: KV;
  readonly agentState: KV;
}

const STREAM_NAME_IN_USE = 10058;
const ms = (n: number) => n * 1_000_000;

/** Creates a stream, or brings an existing one up to date. Safe to run from several hosts at once. */
async function ensureStream(jsm: JetStreamManager, name: string, subject: string, maxAgeMs: number, options: InfrastructureOptions, extra: Partial<StreamConfig> = {}): Promise<void> {
  const config: Partial<StreamConfig> & { name: string } = {
    ...extra,
    name,
    subjects: [subject],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: options.replicas,
    max_age: ms(maxAgeMs),
    duplicate_window: ms(options.duplicateWindowMs),
  };
  try {
    await jsm.streams.add(config);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NAME_IN_USE) throw err;
    const { num_replicas: _replicas, ...updatable } = config;
    await jsm.streams.update(config.name, updatable);
  }
}

/** The stream every conversation event goes through. */
export function ensureEventStream(jsm: JetStreamManager, subjects: Subjects, options: InfrastructureOptions): Promise<void> {
  // Direct gets name the subject in the API subject, so a chat user can be allowed to read back
  // the last event of its own sessions (after a reconnect) and nothing else.
  // Nothing removes events but their age: no purge, no message deletes, even for the services.
  // (A stream cannot take these back; recreate it to.)
  return ensureStream(jsm, subjects.eventStream, subjects.allTopics, options.eventMaxAgeMs, options, { allow_direct: true, deny_purge: true, deny_delete: true });
}

/** Where messages go whose handler kept failing; kept 30 days for inspection and replay. */
export function ensureDeadLetterStream(jsm: JetStreamManager, subjects: Subjects, options: InfrastructureOptions): Promise<void> {
  // A replayed dead letter is deleted (message by message); purging them all is never needed.
  return ensureStream(jsm, subjects.deadLetterStream, subjects.allDeadLetters, 30 * 24 * 3600_000, options, { deny_purge: true });
}

/**
 * A bucket's keys are written and deleted by messages (a delete is a marker, not the stream's
 * delete API), so its stream may refuse purges and message deletes. Roll-ups (what `kv.purge(key)`
 * sends) need the purge permission; nothing here uses them, so they are turned off.
 */
async function protectBucket(jsm: JetStreamManager, kv: KV): Promise<void> {
  const status = await kv.status();
  const { config } = status.streamInfo;
  if (config.deny_delete && config.deny_purge && !config.allow_rollup_hdrs) return;
  await jsm.streams.update(config.name, { ...config, deny_delete: true, deny_purge: true, allow_rollup_hdrs: false });
}

/** Creates or opens the registry and session buckets. */
export async function ensureBuckets(nc: NatsConnection, jsm: JetStreamManager, subjects: Subjects, options: InfrastructureOptions): Promise<Buckets> {
  const kvm = new Kvm(nc);
  const open = async (name: string) => {
    const kv = await kvm.create(name, { history: 1, replicas: options.replicas, storage: StorageType.File });
    await protectBucket(jsm, kv);
    return kv;
  };
  return {
    agents: await open(subjects.agentsBucket),
    workers: await open(subjects.workersBucket),
    sessions: await open(subjects.sessionsBucket),
    agentState: await open(subjects.agentStateBucket),
  };
}

/**
 * Creates or opens the bucket of routing learned from use. Apart from the others: a host whose
 * credentials predate it (an accounts file not yet brought up to date) runs without it, and the
 * routers then route without learning.
 */
export async function ensureRoutingBucket(nc: NatsConnection, jsm: JetStreamManager, subjects: Subjects, options: InfrastructureOptions): Promise<KV> {
  const kv = await new Kvm(nc).create(subjects.routingBucket, { history: 1, replicas: options.replicas, storage: StorageType.File });
  await protectBucket(jsm, kv);
  return kv;
}
