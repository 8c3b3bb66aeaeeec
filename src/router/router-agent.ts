import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { TopicType } from "../core/subjects.js";
import { NoAgentSchema, RoutedSchema, UserMessageSchema, type UserMessage } from "../gen/switchboard/v1/conversation_pb.js";
import { AgentTypeSpecSchema } from "../gen/switchboard/v1/registry_pb.js";
import type { Agent, AgentContext, AgentEnvironment, AgentTypeDefinition, MessageContext } from "../worker/agent.js";
import type { Classification, Classifier, RoutingProfile } from "./classifier.js";
import { KeywordClassifier } from "./keyword-classifier.js";
import { RegistryView } from "../host/registry-view.js";

export const ROUTER_AGENT_TYPE = "router";

export interface RouterOptions {
  /** Default: keyword routing on the profiles' keywords. */
  readonly classifier?: Classifier;
}

/** The sentence a user gets when nothing fits. */
export function noAgentMessage(profiles: readonly RoutingProfile[]): string {
  if (profiles.length === 0) return "No agents are available right now. Please try again later.";
  const list = profiles.map((p) => (p.description ? `${p.type} (${p.description.split(/[.:]/)[0]?.trim()})` : p.type)).join(", ");
  return `I could not tell which agent can help with that. Available agents: ${list}. Please say what you need in other words.`;
}

/**
 * The semantic router as an agent type: it reads the first message of a session from topic
 * `default`, classifies it against the live registry, tells the user where it went (`Routed` on
 * topic `response`) and forwards the message, unchanged, to the chosen agent's topic.
 */
export class RouterAgentType implements AgentTypeDefinition {
  readonly spec = create(AgentTypeSpecSchema, {
    type: ROUTER_AGENT_TYPE,
    description: "Reads what a user wants and connects the conversation to the agent type best suited to it.",
    subscriptions: [TopicType.Default],
    routable: false,
  });
  private readonly classifier: Classifier;
  private view: RegistryView | undefined;
  private profiles: readonly RoutingProfile[] = [];

  constructor(options: RouterOptions = {}) {
    this.classifier = options.classifier ?? new KeywordClassifier();
  }

  async open(env: AgentEnvironment): Promise<void> {
    this.view = new RegistryView(env.nc, env.subjects, env.logger, (profiles) => {
      this.profiles = profiles;
      this.classifier.setProfiles(profiles);
      env.logger.debug({ event: "router.index_rebuilt", agentTypes: profiles.map((p) => p.type) }, "routing index rebuilt");
    });
    await this.view.start();
  }

  classify(text: string): Classification {
    return this.classifier.classify(text);
  }

  /** Agent types the router can route to right now. */
  routableProfiles(): readonly RoutingProfile[] {
    return this.profiles;
  }

  create(context: AgentContext): Agent {
    return new RouterAgent(this, context);
  }

  async close(): Promise<void> {
    await this.view?.close();
  }
}

class RouterAgent implements Agent {
  constructor(
    private readonly type: RouterAgentType,
    private readonly context: AgentContext,
  ) {}

  async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
    if (!isMessage(message, UserMessageSchema) || !ctx.topic) return undefined;
    await this.route(message, ctx);
    return undefined;
  }

  private async route(message: UserMessage, ctx: MessageContext): Promise<void> {
    const source = { user: message.user, session: message.sessionId };
    const { runtime, logger } = this.context;
    const result = this.type.classify(message.text);
    const ids = { session: message.sessionId, turn: message.turnId };
    if (!result.agent) {
      logger.info({ event: "router.no_agent", ...ids, score: result.score }, "no agent fits the message");
      const profiles = this.type.routableProfiles();
      await runtime.publish(
        create(NoAgentSchema, {
          sessionId: message.sessionId,
          user: message.user,
          turnId: message.turnId,
          message: noAgentMessage(profiles),
          availableAgentTypes: profiles.map((p) => p.type),
        }),
        { type: TopicType.Response, source },
        { id: `${ctx.eventId}-noagent` },
      );
      return;
    }
    logger.info({ event: "router.routed", ...ids, agentType: result.agent, intent: result.intent, score: result.score }, `routed to ${result.agent}`);
    await runtime.publish(
      create(RoutedSchema, { sessionId: message.sessionId, user: message.user, turnId: message.turnId, agentType: result.agent, intent: result.intent, score: result.score }),
      { type: TopicType.Response, source },
      { id: `${ctx.eventId}-routed` },
    );
    await runtime.publish(message, { type: result.agent, source }, { id: `${ctx.eventId}-fwd` });
  }
}
