import { randomFillSync } from "node:crypto";
import { InvalidIdError } from "./errors.js";

/** Ids that become subject tokens or KV keys: no dots, wildcards, spaces or control characters. */
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

export function isValidToken(value: string): boolean {
  return TOKEN.test(value);
}

/** Returns `value` when it is a safe subject token, otherwise throws {@link InvalidIdError}. */
export function validateToken(kind: string, value: string): string {
  if (!TOKEN.test(value)) throw new InvalidIdError(kind, value);
  return value;
}

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
const RANDOM_CHARS = 10;

/**
 * Random bytes drawn from the system a block at a time: a call per id (`randomBytes(10)`) costs
 * tens of microseconds, far more than the id, and a chat client makes one per message.
 */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

/** A random, sortable-enough id: millisecond time prefix plus 10 random characters (about 51 bits), all token-safe. */
export function newId(prefix = ""): string {
  if (poolOffset + RANDOM_CHARS > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let rand = "";
  for (let i = 0; i < RANDOM_CHARS; i++) rand += ALPHABET[(pool[poolOffset + i] ?? 0) % ALPHABET.length];
  poolOffset += RANDOM_CHARS;
  return `${prefix}${Date.now().toString(36)}${rand}`;
}

/** `AgentId {type, key}`: one agent instance per key; the key is the topic source. */
export interface AgentId {
  readonly type: string;
  readonly key: string;
}

/** `TopicId {type, source}`; the source is `<user>.<session>` for conversation topics. */
export interface TopicId {
  readonly type: string;
  readonly source: TopicSource;
}

export interface TopicSource {
  readonly user: string;
  readonly session: string;
}

