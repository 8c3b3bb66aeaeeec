import { isValidToken, validateToken, type AgentId, type TopicId } from "./ids.js";
import { ConfigError } from "./errors.js";

/** Host request verbs; each is served on `<prefix>.host.<verb>`. */
export const HostVerb = {
  Register: "register",
  Heartbeat: "heartbeat",
  Deregister: "deregister",
  ListAgents: "admin.agents",
  ListWorkers: "admin.workers",
  ListSessions: "admin.sessions",
  GetSession: "admin.session",
  ListDeadLetters: "admin.deadletters",
  ReplayDeadLetter: "admin.replay",
} as const;
export type HostVerb = (typeof HostVerb)[keyof typeof HostVerb];

/** Topic types with a fixed meaning in the conversation flow. */
export const TopicType = {
  /** First message of a session (and after a NoAgent): read by the router. */
  Default: "default",
  /** Agent output on its way to the user proxy. */
  UserProxy: "user_proxy",
  /** Everything the client shows the user. */
  Response: "response",
} as const;

/**
 * The one place that decides subject, stream, bucket and consumer names. Nothing else
 * concatenates subject strings.
 */
export class Subjects {
  readonly prefix: string;

  constructor(prefix = "sb") {
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(prefix)) {
      throw new ConfigError(`subject prefix ${JSON.stringify(prefix)} must be 1-32 characters from A-Z, a-z, 0-9, '_', '-'`);
    }
    this.prefix = prefix;
  }

  /** `<prefix>.topic.<type>.<user>.<session>` */
  topic(topic: TopicId): string {
    validateToken("topic type", topic.type);
    validateToken("user", topic.source.user);
    validateToken("session id", topic.source.session);
    return `${this.prefix}.topic.${topic.type}.${topic.source.user}.${topic.source.session}`;
  }

  /** Every topic of one type: the filter of a (agent type, topic type) consumer. */
  topicFilter(topicType: string): string {
    return `${this.prefix}.topic.${validateToken("topic type", topicType)}.>`;
  }

  /** One topic type across all of one user's sessions: what a chat client subscribes to. */
  userTopics(topicType: string, user: string): string {
    return `${this.prefix}.topic.${validateToken("topic type", topicType)}.${validateToken("user", user)}.*`;
  }

  /** Every topic type of one user's sessions: what a chat user may publish to. */
  userTopicsOfAnyType(user: string): string {
    return `${this.prefix}.topic.*.${validateToken("user", user)}.*`;
  }

  /**
   * `<prefix>.inbound.<type>.<user>.<session>`: what a chat user publishes to its topics, under
   * the name its account gives it on the way to the Switchboard account (which maps it back to
   * `<prefix>.topic.…`). Apart from `<prefix>.topic.>`, so the user's answers arriving in its
   * account are never sent back.
   */
  userInboundTopics(user: string, topicType?: string): string {
    const type = topicType === undefined ? "*" : validateToken("topic type", topicType);
    return `${this.prefix}.inbound.${type}.${validateToken("user", user)}.*`;
  }

  /** What every chat user publishes to its topics, as it reaches the Switchboard account. */
  get allInboundTopics(): string {
    return `${this.prefix}.inbound.*.*.*`;
  }

  /** `<prefix>.topic.*.*.*`: one token each for type, user and session. */
  get topicPattern(): string {
    return `${this.prefix}.topic.*.*.*`;
  }

  /** Every event of every topic: the subjects of the event stream. */
  get allTopics(): string {
    return `${this.prefix}.topic.>`;
  }

  /** Parses a topic subject; returns undefined for anything that is not one (or has bad tokens). */
  parseTopic(subject: string): TopicId | undefined {
    const parts = subject.split(".");
    if (parts.length !== 5 || parts[0] !== this.prefix || parts[1] !== "topic") return undefined;
    const [, , type, user, session] = parts as [string, string, string, string, string];
    if (!isValidToken(type) || !isValidToken(user) || !isValidToken(session)) return undefined;
    return { type, source: { user, session } };
  }

  /**
   * `<prefix>.delta.<user>.<session>`: parts of a reply in progress, over core NATS. Outside
   * `<prefix>.topic.>`, so the event stream never stores them.
   */
  replyDelta(user: string, session: string): string {
    return `${this.prefix}.delta.${validateToken("user", user)}.${validateToken("session id", session)}`;
  }

  /** Reply deltas of all of one user's sessions: what a chat client subscribes to. */
  userReplyDeltas(user: string): string {
    return `${this.prefix}.delta.${validateToken("user", user)}.*`;
  }

  /** Reply deltas of every session: what workers may publish. */
  get allReplyDeltas(): string {
    return `${this.prefix}.delta.>`;
  }

  /** `<prefix>.rpc.<agentType>.<key…>`; a key of the form `<user>.<session>` spans two tokens. */
  rpc(agent: AgentId): string {
    validateToken("agent type", agent.type);
    const keyTokens = agent.key.split(".");
    if (keyTokens.length > 2) validateToken("agent key", agent.key);
    for (const t of keyTokens) validateToken("agent key", t);
    return `${this.prefix}.rpc.${agent.type}.${agent.key}`;
  }

  rpcFilter(agentType: string): string {
    return `${this.prefix}.rpc.${validateToken("agent type", agentType)}.>`;
  }

  /** Every RPC subject of every agent type. */
  get rpcAll(): string {
    return `${this.prefix}.rpc.>`;
  }

  /** Parses an RPC subject into the addressed agent id; undefined when a token is not a valid id. */
  parseRpc(subject: string): AgentId | undefined {
    const head = `${this.prefix}.rpc.`;
    if (!subject.startsWith(head)) return undefined;
    const [type, ...key] = subject.slice(head.length).split(".");
    if (!type || !isValidToken(type) || key.length === 0 || key.length > 2 || !key.every(isValidToken)) return undefined;
    return { type, key: key.join(".") };
  }

  /** Queue group shared by all workers of one agent type for RPC. */
  rpcQueue(agentType: string): string {
    return `${this.prefix}-rpc-${agentType}`;
  }

  host(verb: HostVerb): string {
    return `${this.prefix}.host.${verb}`;
  }

  /** The verb of a host request subject (`admin.agents` for `<prefix>.host.admin.agents`). */
  parseHostVerb(subject: string): string | undefined {
    const head = `${this.prefix}.host.`;
    return subject.startsWith(head) ? subject.slice(head.length) : undefined;
  }

  /** Every host request subject: what a host subscribes to. */
  get hostAll(): string {
    return `${this.prefix}.host.>`;
  }

  /** Queue group shared by host replicas. */
  get hostQueue(): string {
    return `${this.prefix}-host`;
  }

  /** The JetStream stream holding every topic event. */
  get eventStream(): string {
    return `${this.prefix.toUpperCase().replaceAll("-", "_")}_EVENTS`;
  }

  /** Durable consumer shared by all workers of `agentType` for one subscribed topic type. */
  consumer(agentType: string, topicType: string): string {
    return `${validateToken("agent type", agentType)}__${validateToken("topic type", topicType)}`;
  }

  /**
   * Key of the projection checkpoint in the sessions bucket. Two tokens, so no session id (one
   * token) can name it.
   */
  get projectorCheckpointKey(): string {
    return "projector.checkpoint";
  }

  /** Keys of session records only: one token each. */
  get sessionKeysFilter(): string {
    return "*";
  }

  /**
   * The agent type whose durable consumer for `topicType` is named `consumer`, or undefined when
   * the name is not one of those consumers.
   */
  agentTypeOfConsumer(consumer: string, topicType: string): string | undefined {
    const suffix = `__${topicType}`;
    if (!consumer.endsWith(suffix)) return undefined;
    const agentType = consumer.slice(0, -suffix.length);
    return isValidToken(agentType) ? agentType : undefined;
  }

  /**
   * JetStream's advisory, one per message, that a consumer of the event stream gave up on a message
   * after its maximum deliveries (the last token names the consumer).
   */
  get maxDeliveriesAdvisories(): string {
    return `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${this.eventStream}.*`;
  }

  /**
   * Name of a host's consumer over the event stream; `generation` counts the times the host
   * replaced a consumer that stopped delivering.
   */
  projectorConsumerName(hostId: string, generation = 0): string {
    const base = `host_projector_${validateToken("host id", hostId)}`;
    return generation > 0 ? `${base}_r${generation}` : base;
  }

  private bucket(name: string): string {
    return this.prefix === "sb" ? name : `${this.prefix}_${name}`;
  }

  get agentsBucket(): string {
    return this.bucket("agents");
  }

  get workersBucket(): string {
    return this.bucket("workers");
  }

  get sessionsBucket(): string {
    return this.bucket("sessions");
  }

  /** Per-session agent state, so any worker of a type can continue a session. */
  get agentStateBucket(): string {
    return this.bucket("agent_state");
  }

  /** Key of one agent instance's state: `<agentType>.<user>.<session>`. */
  agentStateKey(agentType: string, key: string): string {
    validateToken("agent type", agentType);
    for (const t of key.split(".")) validateToken("agent key", t);
    return `${agentType}.${key}`;
  }

  /** Routing examples learned from use (clarify answers, hand-offs, operators), per agent type. */
  get routingBucket(): string {
    return this.bucket("routing");
  }

  /** Key of one learned example: `<agentType>.<id>`. */
  learnedExampleKey(agentType: string, id: string): string {
    return `${validateToken("agent type", agentType)}.${validateToken("learned example id", id)}`;
  }

  /** Keys of one agent type's learned examples, or of every type's. */
  learnedExamplesFilter(agentType?: string): string {
    return agentType === undefined ? ">" : `${validateToken("agent type", agentType)}.*`;
  }

  /** Stream keeping messages whose handler kept failing. */
  get deadLetterStream(): string {
    return `${this.prefix.toUpperCase().replaceAll("-", "_")}_DEADLETTER`;
  }

  /** `<prefix>.deadletter.<agentType>.<topicType>.<user>.<session>` */
  deadLetter(agentType: string, topic: TopicId): string {
    return `${this.prefix}.deadletter.${validateToken("agent type", agentType)}.${this.topic(topic).slice(`${this.prefix}.topic.`.length)}`;
  }

  get allDeadLetters(): string {
    return `${this.prefix}.deadletter.>`;
  }
}
