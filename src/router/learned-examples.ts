import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { BucketMirror } from "../core/bucket-mirror.js";
import { decodeBody, encodeBody } from "../core/codec.js";
import { REMOVE_RECORD, updateRecord } from "../core/kv-records.js";
import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logging.js";
import type { Subjects } from "../core/subjects.js";
import { LearnedExampleSchema, LearnedSource, type LearnedExample } from "../gen/switchboard/v1/learning_pb.js";
import type { RoutingProfile } from "./classifier.js";
import { normalizeRequest } from "./hybrid/text.js";

export { LearnedSource, type LearnedExample };

/**
 * Examples kept per agent type and kind (learned from use, or added by an operator); the oldest
 * go first. The two kinds are bounded apart so that users answering many questions cannot push
 * out what an operator chose to keep.
 */
export const DEFAULT_MAX_LEARNED_PER_TYPE = 100;

/**
 * Different users who must teach the same (request, agent type) before it routes anyone else's
 * requests; until then it routes only the requests of the users who taught it. One user, however
 * many answers they send, cannot change where other users' requests go.
 */
export const DEFAULT_LEARNING_QUORUM = 2;

/** Users remembered per example: enough to reach any sensible quorum, bounded against floods. */
const MAX_TEACHERS = 16;

/**
 * Examples per agent type that one user alone taught and no one has confirmed yet; the user's
 * older ones go first. A user teaching many requests pushes out only their own.
 */
export const MAX_UNCONFIRMED_PER_USER = 10;

/**
 * Longer requests are not learned: they are rarely repeated, would dominate a profile, and every
 * word of them makes the index larger and its rebuild slower.
 */
export const MAX_LEARNED_TEXT_LENGTH = 200;

/** How long start() waits for the bucket's contents before going on with what it has. */
const INITIAL_LOAD_TIMEOUT_MS = 5_000;


/** Id of a learned example: a digest of the normalised text, so each request is kept once per type. */
export function learnedExampleId(text: string): string {
  return createHash("sha256").update(normalizeRequest(text)).digest("hex").slice(0, 16);
}

export const SOURCE_NAMES: Readonly<Record<number, string>> = {
  [LearnedSource.CLARIFY_ANSWER]: "clarify answer",
  [LearnedSource.HANDOFF]: "hand-off",
  [LearnedSource.OPERATOR]: "operator",
};

/** Opens the bucket the host creates; rejects when it does not exist (an older host). */
export async function openRoutingBucket(nc: NatsConnection, subjects: Subjects): Promise<KV> {
  return new Kvm(nc).open(subjects.routingBucket);
}

/**
 * Every learned example, or one agent type's, newest first. Read with a watch (an ordered
 * consumer, the same the routers use) rather than a key listing, which would also need to read
 * consumer info: the admin role may watch the bucket and nothing more.
 */
export async function listLearned(kv: KV, subjects: Subjects, agentType?: string): Promise<LearnedExample[]> {
  const out: LearnedExample[] = [];
  if ((await kv.status()).values === 0) return out;
  const prefix = agentType === undefined ? undefined : `${subjects.learnedExamplesFilter(agentType).slice(0, -1)}`;
  const watcher = await kv.watch();
  const timer = setTimeout(() => watcher.stop(), INITIAL_LOAD_TIMEOUT_MS);
  try {
    for await (const entry of watcher) {
      if (entry.operation === "PUT" && (prefix === undefined || entry.key.startsWith(prefix))) out.push(decodeBody(LearnedExampleSchema, entry.value));
      // The last entry present when the watch began: everything has been seen.
      if (entry.delta === 0 || entry.isUpdate) break;
    }
  } finally {
    clearTimeout(timer);
    watcher.stop();
  }
  // The watch delivers oldest write first; reversed, the later write wins a tie of timestamps.
  return out.reverse().sort((a, b) => learnedAt(b) - learnedAt(a));
}

export function learnedAt(e: LearnedExample): number {
  return e.learnedAt ? timestampMs(e.learnedAt) : 0;
}

export function isOperatorExample(e: LearnedExample): boolean {
  return e.source === LearnedSource.OPERATOR;
}

/** Whether an example routes every user's requests: an operator's, or one enough users taught. */
export function isSharedExample(e: LearnedExample, quorum: number): boolean {
  return isOperatorExample(e) || new Set(e.users).size >= quorum;
}

/** The profiles with each type's shared examples (see {@link isSharedExample}) added to its own. */
export function withSharedExamples(profiles: readonly RoutingProfile[], examples: Iterable<LearnedExample>, quorum: number): RoutingProfile[] {
  const byType = new Map<string, string[]>();
  for (const e of examples) {
    if (!isSharedExample(e, quorum)) continue;
    const list = byType.get(e.agentType);
    if (list) list.push(e.text);
    else byType.set(e.agentType, [e.text]);
  }
  // Sorted so that the index is rebuilt only when the examples change, not their order.
  return profiles.map((p) => {
    const learned = byType.get(p.type);
    return learned ? { ...p, examples: [...p.examples, ...learned.sort()] } : p;
  });
}

/**
 * The order in which one type's examples of one kind are kept, best first: shared ones before
 * those only their teachers use, so that a user teaching many requests pushes out only other
 * unconfirmed ones; newest first within each.
 */
function keepOrder(examples: readonly LearnedExample[], quorum: number): LearnedExample[] {
  return [...examples].sort((a, b) => Number(isSharedExample(b, quorum)) - Number(isSharedExample(a, quorum)) || learnedAt(b) - learnedAt(a));
}

/**
 * Stores one (request, agent type) pair, replacing the same request's earlier record for that
 * type, then removes the type's examples of the same kind beyond `maxPerType` (see keepOrder).
 * Returns the record, or undefined when the text is empty or too long to learn.
 */
export async function recordLearned(
  kv: KV,
  subjects: Subjects,
  example: NewExample,
  maxPerType = DEFAULT_MAX_LEARNED_PER_TYPE,
  quorum = DEFAULT_LEARNING_QUORUM,
): Promise<LearnedExample | undefined> {
  const record = await putLearned(kv, subjects, example);
  if (record) await deleteBeyond(kv, subjects, await listLearned(kv, subjects, example.agentType), record, maxPerType, quorum);
  return record;
}

type NewExample = {
  readonly agentType: string;
  readonly text: string;
  readonly source: LearnedSource;
  readonly detail: string;
  /** Who taught it, for an example learned from use. */
  readonly users?: readonly string[];
};

/** Stores one (request, agent type) pair; undefined when the text is empty or too long to learn. */
async function putLearned(kv: KV, subjects: Subjects, example: NewExample): Promise<LearnedExample | undefined> {
  const record = learnedRecord(example);
  if (record) await kv.put(subjects.learnedExampleKey(example.agentType, record.id), encodeBody(LearnedExampleSchema, record));
  return record;
}

let lastLearnedMs = 0;

/**
 * Now, and later than every example this process learned before: which examples are pushed out
 * first goes by this time, and two learned within one millisecond must still be told apart.
 */
function learnedNow(): number {
  lastLearnedMs = Math.max(Date.now(), lastLearnedMs + 1);
  return lastLearnedMs;
}

/** The record of a new example, learned now; undefined when the text is empty or too long to learn. */
function learnedRecord(example: NewExample): LearnedExample | undefined {
  const text = example.text.trim();
  if (text === "" || text.length > MAX_LEARNED_TEXT_LENGTH) return undefined;
  return create(LearnedExampleSchema, { ...example, users: [...(example.users ?? [])], text, id: learnedExampleId(text), learnedAt: timestampFromMs(learnedNow()) });
}

/**
 * Deletes those of one type's examples of the same kind as `added` (an operator's, or learned
 * from use) beyond `keep`: operator examples and examples learned from use are bounded apart, so
 * users answering many questions cannot push out what an operator added.
 */
async function deleteBeyond(kv: KV, subjects: Subjects, ofType: readonly LearnedExample[], added: LearnedExample, keep: number, quorum: number): Promise<void> {
  const sameKind = ofType.filter((e) => isOperatorExample(e) === isOperatorExample(added));
  for (const old of keepOrder(sameKind, quorum).slice(keep)) await kv.delete(subjects.learnedExampleKey(old.agentType, old.id));
}

/** `TYPE.ID`: one record, as `admin routing` lists it. */
const TYPE_AND_ID = /^(.+)\.([0-9a-f]{16})$/;

/**
 * Removes learned examples: every one of an agent type when `what` names a type that has some,
 * the one record of `TYPE.ID`, or otherwise the examples with that id (one per type it was
 * learned for). Returns what was removed.
 */
export async function forgetLearned(kv: KV, subjects: Subjects, what: string): Promise<LearnedExample[]> {
  const all = await listLearned(kv, subjects);
  const ofType = all.filter((e) => e.agentType === what);
  const one = TYPE_AND_ID.exec(what);
  const removed = ofType.length > 0 ? ofType : one ? all.filter((e) => e.agentType === one[1] && e.id === one[2]) : all.filter((e) => e.id === what);
  for (const e of removed) await kv.delete(subjects.learnedExampleKey(e.agentType, e.id));
  return removed;
}

/** What taking back one user's teaching did: examples no one else taught, and those others still hold. */
export interface WithdrawnTeaching {
  readonly forgotten: LearnedExample[];
  readonly kept: LearnedExample[];
}

/**
 * Takes back what `user` taught (of one agent type, or all): an example only they taught is
 * removed, one that others taught too loses their vote and stays for those others — an operator's
 * answer to an account that taught the router wrong. Operator examples are left alone.
 */
export async function forgetUserTeaching(kv: KV, subjects: Subjects, user: string, agentType?: string): Promise<WithdrawnTeaching> {
  const forgotten: LearnedExample[] = [];
  const kept: LearnedExample[] = [];
  for (const e of await listLearned(kv, subjects, agentType)) {
    if (isOperatorExample(e) || !e.users.includes(user)) continue;
    // At the record's revision: a vote another router records meanwhile is not lost with it.
    const outcome = await updateRecord(kv, subjects.learnedExampleKey(e.agentType, e.id), LearnedExampleSchema, (current) => {
      if (!current || isOperatorExample(current) || !current.users.includes(user)) return undefined;
      const users = current.users.filter((u) => u !== user);
      return users.length === 0 ? REMOVE_RECORD : { ...current, users };
    });
    if (outcome === REMOVE_RECORD) forgotten.push(e);
    else if (outcome) kept.push(outcome);
  }
  return { forgotten, kept };
}

export interface LearnedExamplesOptions {
  /** Examples kept per agent type and kind. Default {@link DEFAULT_MAX_LEARNED_PER_TYPE}. */
  readonly maxPerType?: number;
  /** Users who must teach an example before it routes others' requests. Default {@link DEFAULT_LEARNING_QUORUM}. */
  readonly quorum?: number;
}

/**
 * A live view of the learned examples, for the router. Shared examples (an operator's, or ones
 * enough users taught) join their agent type's routing examples, and a request shared for exactly
 * one type is recognised again for anyone; an example not yet shared is recognised only for the
 * users who taught it. Calls `onChange` whenever the set changes (another router learned
 * something, or an operator removed it).
 */
export class LearnedExamples {
  private readonly mirror: BucketMirror<typeof LearnedExampleSchema>;
  private kv: KV | undefined;
  private readonly maxPerType: number;
  private readonly quorum: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
    onChange: () => void,
    options: LearnedExamplesOptions = {},
  ) {
    this.maxPerType = options.maxPerType ?? DEFAULT_MAX_LEARNED_PER_TYPE;
    this.quorum = options.quorum ?? DEFAULT_LEARNING_QUORUM;
    this.mirror = new BucketMirror(LearnedExampleSchema, {
      onChange,
      onBadRecord: (key, err) => logger.warn({ event: "router.bad_learned_example", key, err: errorMessage(err) }, "unreadable learned example ignored"),
    });
  }

  /** Follows the bucket; without one (a host that predates it) the router routes without learning. */
  async start(): Promise<void> {
    let kv: KV;
    try {
      kv = await openRoutingBucket(this.nc, this.subjects);
      // Binding does not check that the bucket exists; asking for its status does.
      await kv.status();
    } catch (err) {
      this.logger.warn({ event: "router.learning_unavailable", err: errorMessage(err) }, "no routing bucket; routing without learned examples");
      return;
    }
    this.kv = kv;
    await this.mirror.start(kv);
  }

  /** The profiles with each type's shared examples added to its own. */
  augment(profiles: readonly RoutingProfile[]): RoutingProfile[] {
    return withSharedExamples(profiles, this.mirror.records.values(), this.quorum);
  }

  /**
   * Agent types this exact request (after normalisation) was learned for, as far as `user` is
   * concerned: an operator's examples alone when there are any, otherwise the shared ones and
   * those `user` taught.
   */
  typesFor(text: string, user: string): string[] {
    const matching = this.withId(learnedExampleId(text));
    const operator = matching.filter(isOperatorExample);
    const applicable = operator.length > 0 ? operator : matching.filter((e) => isSharedExample(e, this.quorum) || e.users.includes(user));
    return applicable.map((e) => e.agentType);
  }

  private withId(id: string): LearnedExample[] {
    return [...this.mirror.records.values()].filter((e) => e.id === id);
  }

  /**
   * Records that `user` labelled a request for `agentType`; failures are logged, never thrown:
   * learning must not stop routing.
   */
  async record(agentType: string, text: string, source: LearnedSource, detail: string, user: string): Promise<void> {
    if (!this.kv) return;
    const id = learnedExampleId(text);
    const sameRequest = this.withId(id);
    // Where an operator said this request goes, use does not add to or change it.
    if (sameRequest.some(isOperatorExample)) return;
    try {
      // Read and written at a revision: two routers recording two users' votes at once keep both.
      const record = await updateRecord(this.kv, this.subjects.learnedExampleKey(agentType, id), LearnedExampleSchema, (current) => {
        if (current && isOperatorExample(current)) return undefined;
        const users = [...new Set([...(current?.users ?? []).filter((u) => u !== user), user])].slice(-MAX_TEACHERS);
        return learnedRecord({ agentType, text, source, detail, users });
      });
      if (!record) return;
      const users = record.users;
      // The mirror already holds the type's other examples: trimming needs no read of the bucket.
      const others = [...this.mirror.records.values()].filter((e) => e.agentType === agentType && e.id !== record.id);
      const onlyTheirs = (e: LearnedExample) => !isSharedExample(e, this.quorum) && e.users.length > 0 && e.users.every((u) => u === user);
      const theirs = keepOrder([record, ...others].filter(onlyTheirs), this.quorum);
      const pushedOut = new Set(theirs.slice(MAX_UNCONFIRMED_PER_USER));
      for (const old of pushedOut) await this.kv.delete(this.subjects.learnedExampleKey(old.agentType, old.id));
      await deleteBeyond(this.kv, this.subjects, [record, ...others].filter((e) => !pushedOut.has(e)), record, this.maxPerType, this.quorum);
      const shared = isSharedExample(record, this.quorum);
      this.logger.info({ event: "router.learned", agentType, id: record.id, source: SOURCE_NAMES[source], user, users: users.length, shared }, `learned a routing example for ${agentType}`);
    } catch (err) {
      this.logger.warn({ event: "router.learn_failed", agentType, err: errorMessage(err) }, "could not record a learned routing example");
    }
  }

  async close(): Promise<void> {
    await this.mirror.close();
  }
}
