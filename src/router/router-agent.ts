import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { performance } from "node:perf_hooks";
import { intentKind, type Logger } from "../core/logging.js";
import { sleep } from "../core/sleep.js";
import { TopicType } from "../core/subjects.js";
import { RoutingOutcome } from "../core/telemetry/metrics.js";
import { recordRoutingDecision, traceClassification } from "../core/telemetry/routing.js";
import { NoAgentSchema, RoutedSchema, UserMessageSchema, type UserMessage } from "../gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema, type AgentTypeSpec } from "../gen/switchboard/v1/registry_pb.js";
import { ClarifyAnswerSchema, ClarifyOptionSchema, ClarifySchema, HandoffSchema } from "../gen/switchboard/v1/routing_pb.js";
import type { Agent, AgentContext, AgentEnvironment, AgentTypeDefinition, MessageContext } from "../worker/agent.js";
import type { Classification, Classifier, RoutingProfile } from "./classifier.js";
import { closeCandidates, DEFAULT_AMBIGUITY_MARGIN, HybridClassifier, isAmbiguous } from "./hybrid/index.js";
import { RegistryView } from "../host/registry-view.js";
import { DEFAULT_LEARNING_QUORUM, DEFAULT_MAX_LEARNED_PER_TYPE, LearnedExamples, LearnedSource } from "./learned-examples.js";

export const ROUTER_AGENT_TYPE = "router";

/** The intent of a `Routed` that follows the user's answer to a `Clarify`. */
export const USER_CHOICE_INTENT = "user_choice";

/** The intent of a `Routed` for a request learned from use for exactly one live agent type. */
export const LEARNED_INTENT = "learned";

export interface RouterOptions {
  /**
   * Default: a {@link HybridClassifier} (keywords plus word-vector semantics), created when the
   * router opens. A classifier with `classifyAsync` (the LLM classifier) is consulted through it.
   */
  readonly classifier?: Classifier;
  /**
   * When the two best agents are closer than this (see `isAmbiguous`), the router asks the user
   * to choose instead of routing. Default {@link DEFAULT_AMBIGUITY_MARGIN}; 0 never asks.
   */
  readonly ambiguityMargin?: number;
  /**
   * Learn from use: clarify answers and hand-offs become routing examples of the chosen agent
   * type, kept in the routing bucket and shared by every router. Default true.
   */
  readonly learning?: boolean;
  /** Learned examples kept per agent type, newest first. Default {@link DEFAULT_MAX_LEARNED_PER_TYPE}. */
  readonly maxLearnedPerType?: number;
  /**
   * Different users who must teach the same request for the same agent type before it routes
   * other users' requests (until then it routes only theirs). Default
   * {@link DEFAULT_LEARNING_QUORUM}; 1 lets one user's answer route everyone's.
   */
  readonly learningQuorum?: number;
}

/** The least time between two rebuilds of the index for learned examples. */
const LEARNED_REINDEX_INTERVAL_MS = 1_000;
/** How long a worker's start waits for its router to see the worker's own agent types. */
const OWN_TYPES_WAIT_MS = 5_000;

/** Kinds of intent whose detail (before any `~`) is a word of the request itself or a declared keyword. */
const OWN_WORD_INTENTS = new Set(["keyword", "lexical", "semantic", "related"]);

/**
 * The intent a `Routed` tells the user: the kind of evidence, with at most the word of the user's
 * own request it rests on. What follows a `~` (`semantic:treatment~chemotherapy`,
 * `related:interview~employ`) is a word of the chosen agent's profile, whose examples include
 * requests learned from every user's clarify answers and hand-offs; a language model's `reason`
 * (`llm:…`) is written from a prompt that lists them. Either would let one user read words of
 * another user's messages by sending probes, so neither leaves the router; `switchboard route`
 * explains a decision in full to an operator.
 */
export function publishedIntent(intent: string): string {
  if (intent.startsWith("fallback:")) return `fallback:${publishedIntent(intent.slice("fallback:".length))}`;
  const kind = intentKind(intent);
  if (!OWN_WORD_INTENTS.has(kind) || intent[kind.length] !== ":") return kind;
  const word = intent.slice(kind.length + 1).split("~")[0] ?? "";
  return word === "" ? kind : `${kind}:${word}`;
}

/** Longest part of a description a short list shows, in characters. */
const HEADLINE_CHARS = 48;

/**
 * The first clause of a description, for short lists ("Finance: budgets, …" → "Finance"): up to a
 * colon, a semicolon or the end of the first sentence ("e.g." and "i.e." do not end one), and no
 * longer than a list item can be.
 */
export function headline(profile: RoutingProfile): string {
  let clause = firstClause(profile.description);
  // "Facilities: rooms, desks, …" would read "facilities (Facilities)": say what it covers instead.
  const sameName = (text: string) => text.toLowerCase().replace(/[\s_-]+/g, " ") === profile.type.toLowerCase().replace(/[\s_-]+/g, " ");
  if (sameName(clause)) clause = firstClause(profile.description.trim().slice(clause.length + 1));
  if (clause.length > HEADLINE_CHARS) {
    const cut = clause.lastIndexOf(" ", HEADLINE_CHARS);
    clause = `${clause.slice(0, cut > 0 ? cut : HEADLINE_CHARS).replace(/[,\s]+$/, "")}…`;
  }
  return clause ? `${profile.type} (${clause})` : profile.type;
}

function firstClause(text: string): string {
  const trimmed = text.trim();
  const end = trimmed.search(/[:;](\s|$)|(?<!\b(?:e\.g|i\.e|etc|vs))\.(\s|$)/);
  return (end < 0 ? trimmed : trimmed.slice(0, end)).trim();
}

/** The sentence a user gets when nothing fits. */
export function noAgentMessage(profiles: readonly RoutingProfile[]): string {
  if (profiles.length === 0) return "No agents are available right now. Please try again later.";
  return `I could not tell which agent can help with that. Available agents: ${profiles.map(headline).join(", ")}. Please say what you need in other words.`;
}

/** The question of a `Clarify`. */
export function clarifyQuestion(options: readonly RoutingProfile[]): string {
  const names = options.map(headline);
  const list = names.length === 2 ? `${names[0]} or ${names[1]}` : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
  return `Your message could be for ${list}. Which one should take it?`;
}

/** Identity key of a profile list: the router rebuilds its index only when this changes. */
function profilesKey(profiles: readonly RoutingProfile[]): string {
  return JSON.stringify(profiles.map((p) => [p.type, p.description, p.keywords, p.examples]));
}

/**
 * The semantic router as an agent type. On topic `default` it reads the first message of a
 * session, the user's answers to its questions and hand-offs from agents; it classifies the text
 * against the live registry and either routes (`Routed` to topic `response`, the text forwarded
 * to the chosen agent's topic), asks the user to choose (`Clarify`), or says nothing fits
 * (`NoAgent`).
 */
export class RouterAgentType implements AgentTypeDefinition {
  readonly stateless = true;
  readonly spec = create(AgentTypeSpecSchema, {
    type: ROUTER_AGENT_TYPE,
    description: "Reads what a user wants and connects the conversation to the agent type best suited to it.",
    subscriptions: [TopicType.Default],
    routable: false,
  });
  readonly ambiguityMargin: number;
  private classifierValue: Classifier | undefined;
  private view: RegistryView | undefined;
  private logger: Logger | undefined;
  private profiles: readonly RoutingProfile[] = [];
  private indexedKey: string | undefined;
  private readonly learning: boolean;
  private readonly maxLearnedPerType: number;
  private readonly learningQuorum: number;
  private learned: LearnedExamples | undefined;
  private learnedReindexedAt = -Infinity;
  private learnedReindexTimer: NodeJS.Timeout | undefined;

  constructor(options: RouterOptions = {}) {
    this.classifierValue = options.classifier;
    this.learning = options.learning ?? true;
    this.maxLearnedPerType = options.maxLearnedPerType ?? DEFAULT_MAX_LEARNED_PER_TYPE;
    if (!(Number.isInteger(this.maxLearnedPerType) && this.maxLearnedPerType > 0)) throw new RangeError("maxLearnedPerType must be a positive integer");
    this.learningQuorum = options.learningQuorum ?? DEFAULT_LEARNING_QUORUM;
    if (!(Number.isInteger(this.learningQuorum) && this.learningQuorum > 0)) throw new RangeError("learningQuorum must be a positive integer");
    this.ambiguityMargin = options.ambiguityMargin ?? DEFAULT_AMBIGUITY_MARGIN;
    if (!(this.ambiguityMargin >= 0)) throw new RangeError("ambiguityMargin must be 0 or more");
  }

  /** The classifier in use; the default one is created (vectors loaded once per process) on first use. */
  get classifier(): Classifier {
    this.classifierValue ??= new HybridClassifier();
    return this.classifierValue;
  }

  async open(env: AgentEnvironment): Promise<void> {
    this.logger = env.logger;
    const classifier = this.classifier;
    if (this.learning) {
      // Loaded before the registry, so the first index already holds what was learned.
      this.learned = new LearnedExamples(env.nc, env.subjects, env.logger, () => this.reindexLearned(classifier, env), {
        maxPerType: this.maxLearnedPerType,
        quorum: this.learningQuorum,
      });
      await this.learned.start();
    }
    this.view = new RegistryView(env.nc, env.subjects, env.logger, (profiles) => this.update(classifier, profiles, env));
    await this.view.start();
    // The agent types come from the registry as workers join; `router.index_rebuilt` names them.
    env.logger.info({ event: "router.started", classifier: classifier.constructor.name }, "router ready");
  }

  /**
   * Registry changes arrive for every worker joining or leaving; most leave the routable set as it
   * was. The index is rebuilt only when the set changes, and swapped in whole, so a message is
   * always classified against one consistent set of live agent types.
   */
  private update(classifier: Classifier, profiles: readonly RoutingProfile[], env: AgentEnvironment): void {
    this.profiles = profiles;
    this.reindex(classifier, env);
  }

  /**
   * A learned example changes the index at once, and a burst of them (every router sees every
   * user's clarify answers, an operator's forget removes many) at most once per
   * {@link LEARNED_REINDEX_INTERVAL_MS} after the last rebuild ended, or after as long again as it
   * took: a rebuild holds the worker (tens of milliseconds usually, seconds with many long
   * examples), and back-to-back rebuilds would starve its messages and heartbeats.
   */
  private reindexLearned(classifier: Classifier, env: AgentEnvironment): void {
    if (this.learnedReindexTimer) return;
    const rebuild = () => {
      this.learnedReindexTimer = undefined;
      const took = this.reindex(classifier, env);
      this.learnedReindexedAt = performance.now() + Math.max(0, took - LEARNED_REINDEX_INTERVAL_MS);
    };
    const wait = this.learnedReindexedAt + LEARNED_REINDEX_INTERVAL_MS - performance.now();
    if (wait <= 0) rebuild();
    else this.learnedReindexTimer = setTimeout(rebuild, wait);
  }

  /** Indexes the live profiles with what was learned for them, when either changed; returns the milliseconds it took. */
  private reindex(classifier: Classifier, env: AgentEnvironment): number {
    const profiles = this.learned ? this.learned.augment(this.profiles) : this.profiles;
    const key = profilesKey(profiles);
    if (key === this.indexedKey) return 0;
    const started = performance.now();
    classifier.setProfiles(profiles);
    this.indexedKey = key;
    const took = performance.now() - started;
    env.logger.info({ event: "router.index_rebuilt", agentTypes: profiles.map((p) => p.type), durationMs: Math.round(took) }, "routing index rebuilt");
    return took;
  }

  /** Classifies with the model when the classifier has one, offline otherwise. */
  async classify(text: string, signal?: AbortSignal): Promise<Classification> {
    const classifier = this.classifier;
    return classifier.classifyAsync ? classifier.classifyAsync(text, signal) : classifier.classify(text);
  }

  /**
   * The live agent type this exact request was learned for, as far as `user` is concerned (see
   * {@link LearnedExamples.typesFor}), when there is exactly one other than `exclude`, the agent
   * that just handed it back.
   */
  learnedAgent(text: string, user: string, exclude?: string): string | undefined {
    if (!this.learned) return undefined;
    const types = this.learned.typesFor(text, user).filter((t) => t !== exclude && this.profiles.some((p) => p.type === t));
    return types.length === 1 ? types[0] : undefined;
  }

  /** Keeps a request `user` labelled as a routing example of `agentType`; never fails the routing. */
  async learn(agentType: string, text: string, source: LearnedSource, detail: string, user: string): Promise<void> {
    await this.learned?.record(agentType, text, source, detail, user);
  }

  /** Agent types the router can route to right now. */
  /** Waits (a bounded time) until the routable types its own worker registered are in the index. */
  async registered(specs: readonly AgentTypeSpec[], signal: AbortSignal): Promise<void> {
    const wanted = specs.filter((s) => s.routable).map((s) => s.type);
    const deadline = performance.now() + OWN_TYPES_WAIT_MS;
    while (!wanted.every((type) => this.profiles.some((p) => p.type === type))) {
      if (performance.now() > deadline || signal.aborted) {
        this.logger?.warn({ event: "router.own_types_late", agentTypes: wanted }, "the registry has not shown this worker's agent types yet; routing to them starts when it does");
        return;
      }
      await sleep(10);
    }
  }

  routableProfiles(): readonly RoutingProfile[] {
    return this.profiles;
  }

  create(context: AgentContext): Agent {
    return new RouterAgent(this, context);
  }

  async close(): Promise<void> {
    clearTimeout(this.learnedReindexTimer);
    await this.view?.close();
    await this.learned?.close();
  }
}

/** What the router is asked to route, whatever message carried it. */
interface RouteRequest {
  readonly sessionId: string;
  readonly user: string;
  readonly turnId: string;
  readonly text: string;
  /** The original message when it can be forwarded unchanged. */
  readonly message?: UserMessage;
}

class RouterAgent implements Agent {
  constructor(
    private readonly type: RouterAgentType,
    private readonly context: AgentContext,
  ) {}

  async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
    if (!ctx.topic) return undefined;
    if (isMessage(message, UserMessageSchema)) {
      await this.route({ sessionId: message.sessionId, user: message.user, turnId: message.turnId, text: message.text, message }, ctx);
    } else if (isMessage(message, ClarifyAnswerSchema)) {
      await this.choose(message.agentType, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, text: message.originalText }, ctx);
    } else if (isMessage(message, HandoffSchema)) {
      recordRoutingDecision(RoutingOutcome.Handoff);
      this.context.logger.info(
        // The reason is free text that may quote the user: not at info.
        { event: "router.handoff", session: message.sessionId, turn: message.turnId, fromAgentType: message.fromAgentType },
        `${message.fromAgentType} handed the session over; routing the message again`,
      );
      this.context.logger.debug({ event: "router.handoff_reason", session: message.sessionId, turn: message.turnId, reason: message.reason }, "hand-off reason");
      const routed = await this.route({ sessionId: message.sessionId, user: message.user, turnId: message.turnId, text: message.text }, ctx, message.fromAgentType);
      // The agent that had it says it is not theirs; where it went instead is worth remembering.
      if (routed && routed !== message.fromAgentType) await this.type.learn(routed, message.text, LearnedSource.HANDOFF, `handed back by ${message.fromAgentType}`, message.user);
    }
    return undefined;
  }

  /** Routes, asks or says nothing fits; returns the agent type routed to without asking, if any. */
  private async route(request: RouteRequest, ctx: MessageContext, handedBackBy?: string): Promise<string | undefined> {
    const ids = { session: request.sessionId, turn: request.turnId };
    const learned = this.type.learnedAgent(request.text, request.user, handedBackBy);
    if (learned) {
      this.context.logger.info({ event: "router.routed", ...ids, agentType: learned, intent: LEARNED_INTENT, score: 1 }, `routed to ${learned} as learned`);
      await this.routeTo(learned, LEARNED_INTENT, 1, request, ctx);
      return learned;
    }
    const result = await traceClassification(() => this.type.classify(request.text, ctx.signal));
    if (!result.agent) {
      this.context.logger.info({ event: "router.no_agent", ...ids, score: result.score }, "no agent fits the message");
      recordRoutingDecision(RoutingOutcome.NoAgent, undefined, result.score);
      await this.noAgent(request, ctx);
      return undefined;
    }
    if (isAmbiguous(result, this.type.ambiguityMargin)) {
      const options = this.clarifyOptions(result);
      if (options.length >= 2) {
        this.context.logger.info({ event: "router.clarify", ...ids, agentTypes: options.map((o) => o.agentType) }, "asked the user to choose an agent");
        recordRoutingDecision(RoutingOutcome.Clarify, undefined, result.score);
        await this.context.runtime.publish(
          create(ClarifySchema, {
            sessionId: request.sessionId,
            user: request.user,
            turnId: request.turnId,
            options,
            question: clarifyQuestion(options.map((o) => this.profile(o.agentType)).filter((p): p is RoutingProfile => p !== undefined)),
          }),
          { type: TopicType.Response, source: { user: request.user, session: request.sessionId } },
          { id: `${ctx.eventId}-clarify` },
        );
        return undefined;
      }
    }
    this.context.logger.info({ event: "router.routed", ...ids, agentType: result.agent, intent: intentKind(result.intent), score: result.score }, `routed to ${result.agent}`);
    await this.routeTo(result.agent, result.intent, result.score, request, ctx);
    return result.agent;
  }

  /** The user's answer to a Clarify: route there if it is still a live choice, else start over. */
  private async choose(agentType: string, request: RouteRequest, ctx: MessageContext): Promise<void> {
    const ids = { session: request.sessionId, turn: request.turnId };
    if (!this.profile(agentType)) {
      this.context.logger.warn({ event: "router.choice_unavailable", ...ids, agentType }, "the chosen agent type is not available; routing afresh");
      await this.route(request, ctx);
      return;
    }
    this.context.logger.info({ event: "router.routed", ...ids, agentType, intent: USER_CHOICE_INTENT, score: 1 }, `routed to ${agentType} as the user chose`);
    await this.routeTo(agentType, USER_CHOICE_INTENT, 1, request, ctx);
    // Any client can send an answer to a question never asked; only a choice among the options
    // the router offers for this request is worth teaching every other user's routing.
    if (await this.wouldOffer(agentType, request.text, ctx)) {
      await this.type.learn(agentType, request.text, LearnedSource.CLARIFY_ANSWER, "the user chose it when asked", request.user);
    } else {
      this.context.logger.info({ event: "router.choice_not_learned", ...ids, agentType }, "the choice was not among the options for this request; not learned");
    }
  }

  /** Whether the router, asked about `text` now, would offer `agentType` among its options. */
  private async wouldOffer(agentType: string, text: string, ctx: MessageContext): Promise<boolean> {
    const result = await this.type.classify(text, ctx.signal);
    return isAmbiguous(result, this.type.ambiguityMargin) && this.clarifyOptions(result).some((o) => o.agentType === agentType);
  }

  private clarifyOptions(result: Classification) {
    const close = new Set(closeCandidates(result, this.type.ambiguityMargin));
    return result.ranked
      .filter((r) => close.has(r.agent))
      .map((r) => create(ClarifyOptionSchema, { agentType: r.agent, description: this.profile(r.agent)?.description ?? "", score: r.score }))
      .filter((o) => this.profile(o.agentType) !== undefined);
  }

  private profile(agentType: string): RoutingProfile | undefined {
    return this.type.routableProfiles().find((p) => p.type === agentType);
  }

  private async routeTo(agentType: string, intent: string, score: number, request: RouteRequest, ctx: MessageContext): Promise<void> {
    recordRoutingDecision(RoutingOutcome.Routed, agentType, score);
    const source = { user: request.user, session: request.sessionId };
    await this.context.runtime.publish(
      create(RoutedSchema, { sessionId: request.sessionId, user: request.user, turnId: request.turnId, agentType, intent: publishedIntent(intent), score }),
      { type: TopicType.Response, source },
      { id: `${ctx.eventId}-routed` },
    );
    const forwarded = request.message ?? create(UserMessageSchema, { sessionId: request.sessionId, user: request.user, turnId: request.turnId, text: request.text });
    await this.context.runtime.publish(forwarded, { type: agentType, source }, { id: `${ctx.eventId}-fwd` });
  }

  private async noAgent(request: RouteRequest, ctx: MessageContext): Promise<void> {
    const profiles = this.type.routableProfiles();
    await this.context.runtime.publish(
      create(NoAgentSchema, {
        sessionId: request.sessionId,
        user: request.user,
        turnId: request.turnId,
        message: noAgentMessage(profiles),
        availableAgentTypes: profiles.map((p) => p.type),
      }),
      { type: TopicType.Response, source: { user: request.user, session: request.sessionId } },
      { id: `${ctx.eventId}-noagent` },
    );
  }
}
