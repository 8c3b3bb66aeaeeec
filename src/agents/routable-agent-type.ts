import { create } from "@bufbuild/protobuf";
import { AgentTypeSpecSchema, type AgentTypeSpec } from "../gen/switchboard/v1/registry_pb.js";
import type { RoutingProfile } from "../router/classifier.js";
import type { Agent, AgentContext, AgentEnvironment, AgentTypeDefinition } from "../worker/agent.js";
import { HandoffPolicy } from "./handoff-policy.js";

/**
 * A task agent type the router can send conversations to: its spec is its routing profile on a
 * topic of its own name, and follow-ups naming another agent go back to the router.
 */
export abstract class RoutableAgentType implements AgentTypeDefinition {
  readonly spec: AgentTypeSpec;
  /** Gives follow-ups that name another agent type back to the router; set by open(). */
  handoff: HandoffPolicy | undefined;

  constructor(profile: RoutingProfile) {
    this.spec = create(AgentTypeSpecSchema, {
      type: profile.type,
      description: profile.description,
      keywords: [...profile.keywords],
      examples: [...profile.examples],
      subscriptions: [profile.type],
      routable: true,
    });
  }

  async open(env: AgentEnvironment): Promise<void> {
    this.handoff = await HandoffPolicy.open(env, this.spec);
  }

  abstract create(context: AgentContext): Agent;

  async close(): Promise<void> {
    await this.handoff?.close();
  }
}
