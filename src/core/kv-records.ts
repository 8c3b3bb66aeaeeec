import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeBody, encodeBody } from "./codec.js";
import { errorMessage, SwitchboardError, ErrorCode } from "./errors.js";
import { sleep } from "./sleep.js";

/**
 * Opens a bucket that must already exist (throws otherwise) and reads it by key the cheapest way
 * it allows. `Kvm.open` alone cannot tell and falls back to the stream API's message get, which
 * costs the server an audit advisory on every read; a direct get does not, and any replica
 * answers it.
 */
export async function openBucket(nc: NatsConnection, name: string): Promise<KV> {
  const kvm = new Kvm(nc);
  const status = await (await kvm.open(name)).status();
  return status.streamInfo.config.allow_direct ? kvm.open(name, { allow_direct: true }) : kvm.open(name);
}

/** Reads a protobuf record; undefined when the key is absent or deleted. */
export async function readRecord<Desc extends DescMessage>(
  kv: KV,
  key: string,
  schema: Desc,
): Promise<{ value: MessageShape<Desc>; revision: number } | undefined> {
  const entry = await kv.get(key);
  if (!entry || entry.operation !== "PUT") return undefined;
  return { value: decodeBody(schema, entry.value), revision: entry.revision };
}

/**
 * The keys of a bucket, read from the stream's per-subject state in one request. Used instead of
 * `kv.keys()`, whose consumer can keep waiting while other clients write to the bucket.
 */
export async function bucketKeys(jsm: JetStreamManager, bucket: string, keys = ">"): Promise<string[]> {
  const prefix = `$KV.${bucket}.`;
  const info = await jsm.streams.info(`KV_${bucket}`, { subjects_filter: `${prefix}${keys}` });
  return Object.keys(info.state.subjects ?? {})
    .map((subject) => subject.slice(prefix.length))
    .sort();
}

/** Every live record of a bucket whose key matches `keys` (a KV key filter); deleted keys are skipped. */
export async function readAllRecords<Desc extends DescMessage>(jsm: JetStreamManager, kv: KV, bucket: string, schema: Desc, keys = ">"): Promise<MessageShape<Desc>[]> {
  const out: MessageShape<Desc>[] = [];
  for (const key of await bucketKeys(jsm, bucket, keys)) {
    const rec = await readRecord(kv, key, schema);
    if (rec) out.push(rec.value);
  }
  return out;
}

/** Another writer changed the key first (update) or it already exists (create). */
export function isRevisionConflict(err: unknown): boolean {
  if (err instanceof JetStreamApiError) {
    return err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
  }
  // kv.create() on an existing key reports the conflict as a plain error.
  return /wrong last sequence|key exists/i.test(errorMessage(err));
}

/** A key as a writer last read or wrote it. */
export interface KeySnapshot<T> {
  /** Undefined when the key does not exist or was deleted. */
  readonly value: T | undefined;
  /** 0 when the key does not exist; a deleted key keeps the revision of its delete marker. */
  readonly revision: number;
}

/** Reads a key with the revision a later {@link writeAtRevision} must expect. */
export async function readSnapshot(kv: KV, key: string): Promise<KeySnapshot<Uint8Array>> {
  const entry = await kv.get(key);
  if (!entry) return { value: undefined, revision: 0 };
  return { value: entry.operation === "PUT" ? entry.value : undefined, revision: entry.revision };
}

/**
 * Writes `data` only if the key is still at `revision`, creating it at 0, and returns the new
 * revision. A newer write by someone else rejects; see {@link isRevisionConflict}.
 */
export function writeAtRevision(kv: KV, key: string, data: Uint8Array, revision: number): Promise<number> {
  return revision === 0 ? kv.create(key, data) : kv.update(key, data, revision);
}

const MAX_ATTEMPTS = 50;

/** Jittered, growing pause so that writers contending for one key spread out. */
function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(250, 5 * 2 ** Math.min(attempt, 6));
  return sleep(Math.random() * ceiling);
}

/** What a {@link updateRecord} mutation returns to delete the key instead of writing it. */
export const REMOVE_RECORD: unique symbol = Symbol("remove record");

/**
 * Read-modify-write with optimistic concurrency: `mutate` gets the current value (or undefined) and
 * returns the new one, {@link REMOVE_RECORD} to delete it, or undefined to leave the record as it
 * is. Retries when another writer got there first, so concurrent hosts never overwrite each
 * other's changes.
 * Returns the value written (or REMOVE_RECORD), or undefined when nothing was written.
 */
export async function updateRecord<Desc extends DescMessage>(
  kv: KV,
  key: string,
  schema: Desc,
  mutate: (current: MessageShape<Desc> | undefined) => MessageShape<Desc> | undefined,
): Promise<MessageShape<Desc> | undefined>;
export async function updateRecord<Desc extends DescMessage>(
  kv: KV,
  key: string,
  schema: Desc,
  mutate: (current: MessageShape<Desc> | undefined) => MessageShape<Desc> | typeof REMOVE_RECORD | undefined,
): Promise<MessageShape<Desc> | typeof REMOVE_RECORD | undefined>;
export async function updateRecord<Desc extends DescMessage>(
  kv: KV,
  key: string,
  schema: Desc,
  mutate: (current: MessageShape<Desc> | undefined) => MessageShape<Desc> | typeof REMOVE_RECORD | undefined,
): Promise<MessageShape<Desc> | typeof REMOVE_RECORD | undefined> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { value, revision } = await readSnapshot(kv, key);
    const next = mutate(value === undefined ? undefined : decodeBody(schema, value));
    if (!next) return undefined;
    try {
      if (next === REMOVE_RECORD) await kv.delete(key, { previousSeq: revision });
      else await writeAtRevision(kv, key, encodeBody(schema, next), revision);
      return next;
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
    }
    await backoff(attempt);
  }
  throw new SwitchboardError(ErrorCode.Remote, `gave up updating ${key} after ${MAX_ATTEMPTS} conflicting writes`);
}

/**
 * Records this process writes often, with the revision it last saw: an update is one write
 * instead of a read and a write, and falls back to reading when another writer got there first.
 * Bounded; the least recently used entries are forgotten.
 */
export class CachedRecords<Desc extends DescMessage> {
  private readonly cache = new Map<string, KeySnapshot<MessageShape<Desc>>>();

  constructor(
    private readonly kv: KV,
    private readonly schema: Desc,
    private readonly capacity = 10_000,
  ) {}

  private async read(key: string): Promise<KeySnapshot<MessageShape<Desc>>> {
    const { value, revision } = await readSnapshot(this.kv, key);
    const snapshot = { value: value === undefined ? undefined : decodeBody(this.schema, value), revision };
    this.remember(key, snapshot);
    return snapshot;
  }

  private remember(key: string, snapshot: KeySnapshot<MessageShape<Desc>>): void {
    this.cache.delete(key);
    this.cache.set(key, snapshot);
    if (this.cache.size > this.capacity) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
  }

  /** Like {@link updateRecord}, one round trip when this process was the last writer. */
  async update(key: string, mutate: (current: MessageShape<Desc> | undefined) => MessageShape<Desc> | undefined): Promise<MessageShape<Desc> | undefined> {
    let snapshot = this.cache.get(key) ?? (await this.read(key));
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const next = mutate(snapshot.value);
      if (!next) return undefined;
      const data = encodeBody(this.schema, next);
      try {
        const revision = await writeAtRevision(this.kv, key, data, snapshot.revision);
        this.remember(key, { value: next, revision });
        return next;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
        await backoff(attempt);
        snapshot = await this.read(key);
      }
    }
    throw new SwitchboardError(ErrorCode.Remote, `gave up updating ${key} after ${MAX_ATTEMPTS} conflicting writes`);
  }
}
