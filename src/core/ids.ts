import { randomBytes } from "node:crypto";
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

/** A random, sortable-enough id: millisecond time prefix plus 64 random bits, all token-safe. */
export function newId(prefix = ""): string {
  const time = Date.now().toString(36);
  const bytes = randomBytes(10);
  let rand = "";
  for (const b of bytes) rand += ALPHABET[b % ALPHABET.length];
  return `${prefix}${time}${rand}`;
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

/** The agent key for a conversation topic source. */
export function sourceKey(source: TopicSource): string {
  return `${source.user}.${source.session}`;
}

export function agentIdToString(id: AgentId): string {
  return `${id.type}/${id.key}`;
}
