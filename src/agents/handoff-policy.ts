import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { TopicType } from "../core/subjects.js";
import type { UserMessage } from "../gen/switchboard/v1/conversation_pb.js";
import { HandoffSchema } from "../gen/switchboard/v1/routing_pb.js";
import { RegistryView } from "../host/registry-view.js";
import type { RoutingProfile } from "../router/classifier.js";
import { keywordPattern } from "../router/keyword-classifier.js";
import type { AgentEnvironment, AgentRuntime, MessageContext } from "../worker/agent.js";

interface CompiledProfile {
  readonly type: string;
  readonly keywords: readonly { readonly keyword: string; readonly pattern: RegExp }[];
}

function compile(profile: Pick<RoutingProfile, "type" | "keywords">): CompiledProfile {
  return { type: profile.type, keywords: profile.keywords.filter((k) => k.trim() !== "").map((keyword) => ({ keyword, pattern: keywordPattern(keyword) })) };
}

function firstKeyword(profile: CompiledProfile, text: string): string | undefined {
  return profile.keywords.find((k) => k.pattern.test(text))?.keyword;
}

/** One registry watch per connection, however many agent types of the worker use it. */
interface SharedRegistry {
  readonly view: RegistryView;
  readonly started: Promise<void>;
  readonly live: { profiles: readonly CompiledProfile[] };
  users: number;
}

const registries = new Map<NatsConnection, SharedRegistry>();

async function acquireRegistry(env: AgentEnvironment): Promise<SharedRegistry> {
  let shared = registries.get(env.nc);
  if (!shared) {
    const live: SharedRegistry["live"] = { profiles: [] };
    const view = new RegistryView(env.nc, env.subjects, env.logger, (profiles) => {
      live.profiles = profiles.map(compile);
    });
    shared = { view, started: view.start(), live, users: 0 };
    registries.set(env.nc, shared);
  }
  shared.users++;
  try {
    await shared.started;
  } catch (err) {
    await releaseRegistry(env.nc, shared);
    throw err;
  }
  return shared;
}

async function releaseRegistry(nc: NatsConnection, shared: SharedRegistry): Promise<void> {
  shared.users--;
  if (shared.users > 0 || registries.get(nc) !== shared) return;
  registries.delete(nc);
  await shared.view.close();
}

/** Where a message should go instead, and the keyword that says so. */
export interface HandoffTarget {
  readonly agentType: string;
  readonly keyword: string;
}

/** Sessions remembered per agent type; older ones are forgotten first. */
const SESSION_LIMIT = 10_000;

interface SessionMemory {
  /** The turn that brought the session to this agent: the router's (or the user's) choice. */
  readonly firstTurn: string;
  readonly handedOff: Set<string>;
}

/**
 * Decides, cheaply, when a task agent should give a session back to the router: a follow-up that
 * names a declared keyword of another live, routable agent type and none of this agent's own.
 *
 * The first message an agent sees in a session is never handed off — the router (or the user,
 * after a clarification) chose this agent for it — and a turn is handed off at most once, so a
 * router that chooses this agent again gets an answer rather than a loop. That memory lives in
 * the worker: a follow-up that reaches a worker which never saw the session is answered.
 */
export class HandoffPolicy {
  private readonly own: CompiledProfile;
  private readonly sessions = new Map<string, SessionMemory>();

  private constructor(
    ownProfile: Pick<RoutingProfile, "type" | "keywords">,
    private readonly registry: SharedRegistry,
    private readonly nc: NatsConnection,
  ) {
    this.own = compile(ownProfile);
  }

  /** Starts watching the registry (shared with every other policy on the same connection). */
  static async open(env: AgentEnvironment, ownProfile: Pick<RoutingProfile, "type" | "keywords">): Promise<HandoffPolicy> {
    return new HandoffPolicy(ownProfile, await acquireRegistry(env), env.nc);
  }

  /** The other agent type a text clearly belongs to, from keywords alone. */
  target(text: string): HandoffTarget | undefined {
    if (firstKeyword(this.own, text)) return undefined;
    for (const profile of this.registry.live.profiles) {
      if (profile.type === this.own.type) continue;
      const keyword = firstKeyword(profile, text);
      if (keyword) return { agentType: profile.type, keyword };
    }
    return undefined;
  }

  /** Whether this message of a session should be handed off, and where; remembers the decision. */
  decide(message: UserMessage): HandoffTarget | undefined {
    const key = `${message.user}.${message.sessionId}`;
    let memory = this.sessions.get(key);
    if (!memory) {
      if (this.sessions.size >= SESSION_LIMIT) this.sessions.delete(this.sessions.keys().next().value!);
      memory = { firstTurn: message.turnId, handedOff: new Set() };
      this.sessions.set(key, memory);
    }
    if (message.turnId === memory.firstTurn || memory.handedOff.has(message.turnId)) return undefined;
    const target = this.target(message.text);
    if (target) memory.handedOff.add(message.turnId);
    return target;
  }

  /** Gives the session back to the router (topic `default`) with the user's message. */
  async handOff(runtime: AgentRuntime, message: UserMessage, target: HandoffTarget, ctx: MessageContext): Promise<void> {
    const handoff = create(HandoffSchema, {
      sessionId: message.sessionId,
      user: message.user,
      turnId: message.turnId,
      fromAgentType: this.own.type,
      text: message.text,
      reason: `keyword:${target.keyword.toLowerCase()}`,
    });
    await runtime.publish(handoff, { type: TopicType.Default, source: { user: message.user, session: message.sessionId } }, { id: `${ctx.eventId}-${this.own.type}-handoff` });
  }

  async close(): Promise<void> {
    await releaseRegistry(this.nc, this.registry);
  }
}
