import { validateToken } from "./ids.js";
import { HostVerb, TopicType, type Subjects } from "./subjects.js";

/**
 * The identities that connect to the bus. Each gets only the subjects its job needs (see
 * docs/SECURITY.md); a chat user (`client`) is confined to its own sessions.
 */
export const Role = {
  Host: "host",
  Worker: "worker",
  Client: "client",
  Admin: "admin",
} as const;
export type Role = (typeof Role)[keyof typeof Role];

export const ROLES: readonly Role[] = [Role.Host, Role.Worker, Role.Client, Role.Admin];

/** Roles of the services, with one shared identity each; chat users are created one by one. */
export const SERVICE_ROLES: readonly Role[] = [Role.Host, Role.Worker, Role.Admin];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export interface SubjectRules {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

/** What one identity may publish and subscribe to, as nats-server `permissions` express it. */
export interface Permissions {
  readonly publish: SubjectRules;
  readonly subscribe: SubjectRules;
}

/**
 * Reply subjects of each identity start with its own prefix instead of the shared `_INBOX`, so
 * that no identity may subscribe to another's replies. Chat users get `_INBOX_u_<user>`, which
 * cannot collide with a service role's.
 */
export function inboxPrefix(role: Role, user?: string): string {
  if (role !== Role.Client) return `_INBOX_${role}`;
  return `_INBOX_u_${validateToken("user name", user ?? "")}`;
}

/** Subjects of the JetStream API (fixed by NATS, not by Switchboard). */
const JS = {
  info: "$JS.API.INFO",
  stream: (verb: "CREATE" | "UPDATE" | "INFO", stream: string) => `$JS.API.STREAM.${verb}.${stream}`,
  streamMsg: (verb: "GET" | "DELETE", stream: string) => `$JS.API.STREAM.MSG.${verb}.${stream}`,
  directGet: (stream: string) => [`$JS.API.DIRECT.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}.>`],
  /** Create (or update) a named consumer; the filter subject may follow the name. */
  consumerCreate: (stream: string, consumer: string) => [
    `$JS.API.CONSUMER.CREATE.${stream}.${consumer}`,
    `$JS.API.CONSUMER.CREATE.${stream}.${consumer}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.${consumer}`,
  ],
  consumerInfo: (stream: string, consumer: string) => `$JS.API.CONSUMER.INFO.${stream}.${consumer}`,
  next: (stream: string, consumer: string) => `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
  ack: (stream: string, consumer: string) => `$JS.ACK.${stream}.${consumer}.>`,
  flowControl: (stream: string) => `$JS.FC.${stream}.>`,
  kvStream: (bucket: string) => `KV_${bucket}`,
  kvKeys: (bucket: string) => `$KV.${bucket}.>`,
} as const;

/**
 * NATS micro discovery (`$SRV.PING|INFO|STATS[.<name>[.<id>]]`): hosts and workers answer it,
 * admin asks it; chat users get neither.
 */
const MICRO_DISCOVERY = "$SRV.>";

/** Look keys up in a bucket, directly or through the stream API (depending on how it was made). */
function kvGet(bucket: string): string[] {
  const stream = JS.kvStream(bucket);
  return [JS.stream("INFO", stream), ...JS.directGet(stream), JS.streamMsg("GET", stream)];
}

/**
 * Read a bucket and watch it: the watch is an ordered consumer that the client creates and the
 * server removes once idle. Without CONSUMER.DELETE a reader cannot remove anyone else's watch;
 * nats.js ignores the refused clean-up when a watch restarts.
 */
function kvRead(bucket: string): string[] {
  return [...kvGet(bucket), ...orderedPushConsumer(JS.kvStream(bucket))];
}

/**
 * Read a stream through ordered push consumers (nats.js; KV watches are made of them): ephemeral
 * consumers created with a filter, streaming to the creator's inbox with flow control, removed
 * by the server once idle.
 */
function orderedPushConsumer(stream: string): string[] {
  return [`$JS.API.CONSUMER.CREATE.${stream}`, `$JS.API.CONSUMER.CREATE.${stream}.>`, JS.flowControl(stream)];
}

/** Create, update and inspect one stream. */
function streamOwner(stream: string): string[] {
  return [JS.stream("CREATE", stream), JS.stream("UPDATE", stream), JS.stream("INFO", stream)];
}

/** Use one durable pull consumer: create or update it, read its info, pull, ack. */
function pullConsumer(stream: string, consumer: string): string[] {
  return [...JS.consumerCreate(stream, consumer), JS.consumerInfo(stream, consumer), JS.next(stream, consumer), JS.ack(stream, consumer)];
}

/**
 * Where a service answers requests: the inboxes of the roles that may ask it. Not
 * `allow_responses`, which lets an identity answer any message it receives wherever its sender
 * pointed: one holder of the worker's credentials, sending to itself over `sb.rpc`, could then
 * write to every subject of the account (a stream delete, a bucket key). Services also refuse to
 * answer a reply subject that is not an inbox (`isAnswerableReply`), so that no one who may ask
 * them can point their own permissions elsewhere.
 */
function answerTo(...roles: Role[]): string[] {
  return roles.map((role) => `${inboxPrefix(role)}.>`);
}

/** Read-only queries; replaying a dead letter writes, so it needs the host's credentials. */
export const ADMIN_QUERIES: readonly HostVerb[] = [HostVerb.ListAgents, HostVerb.ListWorkers, HostVerb.ListSessions, HostVerb.GetSession, HostVerb.ListDeadLetters];

function hostPermissions(s: Subjects): Permissions {
  const buckets = [s.agentsBucket, s.workersBucket, s.sessionsBucket, s.agentStateBucket];
  return {
    publish: {
      allow: [
        JS.info,
        ...streamOwner(s.eventStream),
        ...streamOwner(s.deadLetterStream),
        // Listing and replaying dead letters.
        JS.streamMsg("GET", s.deadLetterStream),
        JS.streamMsg("DELETE", s.deadLetterStream),
        ...buckets.flatMap((b) => streamOwner(JS.kvStream(b))),
        // The registry view follows the agents bucket; workers and sessions are read by key.
        ...kvRead(s.agentsBucket),
        ...[s.workersBucket, s.sessionsBucket].flatMap(kvGet),
        ...[s.agentsBucket, s.workersBucket, s.sessionsBucket].map(JS.kvKeys),
        // The session projector reads the stream through its own ordered consumer (no pulls, no
        // acknowledgements), and by direct gets while no consumer can be created (a cluster
        // without a meta leader).
        ...orderedPushConsumer(s.eventStream),
        ...JS.directGet(s.eventStream),
        // Errors to users about undeliverable messages, and dead-letter replays.
        s.allTopics,
        // Messages that ran out of deliveries: read back from the event stream and dead-lettered.
        JS.streamMsg("GET", s.eventStream),
        s.allDeadLetters,
        // Answers to workers' registrations and heartbeats, admin queries and micro discovery.
        ...answerTo(Role.Worker, Role.Admin, Role.Host),
        // An operator with the host's credentials may run every admin command, replay included.
        ...ADMIN_QUERIES.map((v) => s.host(v)),
        s.host(HostVerb.ReplayDeadLetter),
        // Creates the learned-routing bucket; an operator with the host's credentials may add and
        // remove learned examples.
        ...streamOwner(JS.kvStream(s.routingBucket)),
        ...kvRead(s.routingBucket),
        JS.kvKeys(s.routingBucket),
      ],
      deny: [],
    },
    subscribe: { allow: [s.hostAll, s.maxDeliveriesAdvisories, `${inboxPrefix(Role.Host)}.>`, MICRO_DISCOVERY], deny: [] },
  };
}

function workerPermissions(s: Subjects): Permissions {
  const events = s.eventStream;
  const anyConsumer = "*";
  return {
    publish: {
      allow: [
        JS.info,
        JS.stream("INFO", events),
        ...pullConsumer(events, anyConsumer),
        ...kvGet(s.agentStateBucket),
        JS.kvKeys(s.agentStateBucket),
        // The router and the hand-off policy follow the registry.
        ...kvRead(s.agentsBucket),
        // The router follows and records the routing examples learned from use.
        ...kvRead(s.routingBucket),
        JS.kvKeys(s.routingBucket),
        s.allTopics,
        s.allReplyDeltas,
        s.allDeadLetters,
        s.rpcAll,
        s.host(HostVerb.Register),
        s.host(HostVerb.Heartbeat),
        s.host(HostVerb.Deregister),
        // Answers to other workers' direct sends and to micro discovery.
        ...answerTo(Role.Worker, Role.Admin),
      ],
      deny: [],
    },
    subscribe: { allow: [s.rpcAll, `${inboxPrefix(Role.Worker)}.>`, MICRO_DISCOVERY], deny: [] },
  };
}

function adminPermissions(s: Subjects): Permissions {
  return {
    // The registry is readable too, for `switchboard route` against the live agent types.
    publish: { allow: [...ADMIN_QUERIES.map((v) => s.host(v)), ...kvRead(s.agentsBucket), ...kvRead(s.routingBucket), MICRO_DISCOVERY], deny: [] },
    subscribe: { allow: [`${inboxPrefix(Role.Admin)}.>`], deny: [] },
  };
}

/**
 * A chat user: events into its own sessions (a JetStream publish needs only the subject; the
 * stream's acknowledgement comes back on the user's inbox), its own responses, nothing else: no
 * stream, consumer or bucket API, no host or RPC subjects.
 * Topics the system writes for the user (`response`, `user_proxy`) are not the user's to write.
 */
function clientPermissions(s: Subjects, user: string): Permissions {
  return {
    // The server checks these after the user's account has moved the user's topics
    // (`<prefix>.topic.<type>.<user>.<session>`) to `<prefix>.inbound.…` (see ChatUserImports):
    // a refused publish to its own response topic is reported under that name.
    publish: {
      allow: [
        s.userInboundTopics(user),
        // After a reconnect, the last answer of its own session, read back from the stream: a
        // direct get names the subject in the API subject, so this reaches no one else's events.
        userLastAnswer(s, user),
      ],
      deny: [s.userInboundTopics(user, TopicType.Response), s.userInboundTopics(user, TopicType.UserProxy)],
    },
    subscribe: { allow: [s.userTopics(TopicType.Response, user), s.userReplyDeltas(user), `${inboxPrefix(Role.Client, user)}.>`], deny: [] },
  };
}

/**
 * What a chat user's account imports from the Switchboard account, and nothing else: services
 * (the server answers them; the answer is mapped back into the user's account whatever reply
 * subject the user named) and streams (messages the user receives), under the subject names of
 * the wire contract — with one exception, internal to the accounts. What the user publishes to
 * its topics (`topicsAs`) is moved by an account mapping to `topics`, the subject the import and
 * export use, which does not overlap the user's answers arriving in its account; otherwise each
 * answer would be sent straight back through the service and stored twice. The Switchboard
 * account maps `topics` back to the topic subjects (see {@link inboundMapping}).
 *
 * The import names the same subject on both sides on purpose: nats-server 2.9 crashes when an
 * answer the user directed at its own topics passes through an import that renames subjects.
 */
export interface ChatUserImports {
  readonly topics: string;
  /** The subjects the user publishes its events to (the contract's names). */
  readonly topicsAs: string;
  readonly lastAnswer: string;
  readonly streams: readonly string[];
}

export function chatUserImports(s: Subjects, user: string): ChatUserImports {
  validateToken("user name", user);
  return {
    topics: s.userInboundTopics(user),
    topicsAs: s.userTopicsOfAnyType(user),
    lastAnswer: userLastAnswer(s, user),
    streams: [s.userTopics(TopicType.Response, user), s.userReplyDeltas(user)],
  };
}

/** The Switchboard account's mapping of what users publish back to the topic subjects the stream stores. */
export function inboundMapping(s: Subjects): { readonly from: string; readonly to: string } {
  return { from: s.allInboundTopics, to: s.topicPattern };
}

/** A direct get naming the subject in the API subject: it reaches none but this user's answers. */
function userLastAnswer(s: Subjects, user: string): string {
  return `$JS.API.DIRECT.GET.${s.eventStream}.${s.userTopics(TopicType.Response, user)}`;
}

/** The permissions of a role, each subject once; `user` names the chat user for {@link Role.Client}. */
export function permissionsFor(role: Role, subjects: Subjects, user?: string): Permissions {
  const p = rolePermissions(role, subjects, user);
  const unique = (r: SubjectRules): SubjectRules => ({ allow: [...new Set(r.allow)], deny: [...new Set(r.deny)] });
  return { publish: unique(p.publish), subscribe: unique(p.subscribe) };
}

function rolePermissions(role: Role, subjects: Subjects, user?: string): Permissions {
  switch (role) {
    case Role.Host:
      return hostPermissions(subjects);
    case Role.Worker:
      return workerPermissions(subjects);
    case Role.Admin:
      return adminPermissions(subjects);
    case Role.Client:
      return clientPermissions(subjects, validateToken("user name", user ?? ""));
  }
}
