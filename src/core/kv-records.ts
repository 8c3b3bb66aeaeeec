import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { decodeBody, encodeBody } from "./codec.js";
import { errorMessage, SwitchboardError, ErrorCode } from "./errors.js";

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

function isRevisionConflict(err: unknown): boolean {
  if (err instanceof JetStreamApiError) {
    return err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
  }
  // kv.create() on an existing key reports the conflict as a plain error.
  return /wrong last sequence|key exists/i.test(errorMessage(err));
}

const MAX_ATTEMPTS = 50;

/** Jittered, growing pause so that writers contending for one key spread out. */
function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(250, 5 * 2 ** Math.min(attempt, 6));
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
}

/**
 * Read-modify-write with optimistic concurrency: `mutate` gets the current value (or undefined) and
 * returns the new one, or undefined to leave the record as it is. Retries when another writer got
 * there first, so concurrent hosts never overwrite each other's changes.
 * Returns the value written, or undefined when nothing was written.
 */
export async function updateRecord<Desc extends DescMessage>(
  kv: KV,
  key: string,
  schema: Desc,
  mutate: (current: MessageShape<Desc> | undefined) => MessageShape<Desc> | undefined,
): Promise<MessageShape<Desc> | undefined> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const entry = await kv.get(key);
    const current = entry && entry.operation === "PUT" ? decodeBody(schema, entry.value) : undefined;
    const next = mutate(current);
    if (!next) return undefined;
    const data = encodeBody(schema, next);
    try {
      if (entry) await kv.update(key, data, entry.revision);
      else await kv.create(key, data);
      return next;
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
    }
    await backoff(attempt);
  }
  throw new SwitchboardError(ErrorCode.Remote, `gave up updating ${key} after ${MAX_ATTEMPTS} conflicting writes`);
}
