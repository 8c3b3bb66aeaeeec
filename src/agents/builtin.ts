import { ConfigError } from "../core/errors.js";
import type { RoutingProfile } from "../router/classifier.js";
import { RouterAgentType, ROUTER_AGENT_TYPE, type RouterOptions } from "../router/router-agent.js";
import type { AgentTypeDefinition } from "../worker/agent.js";
import { TaskAgentType, type TaskAgentOptions } from "./task-agent.js";
import { UserProxyAgentType, USER_PROXY_AGENT_TYPE } from "./user-proxy.js";

/** Routing profiles of the built-in task agents. */
export const BUILTIN_PROFILES: readonly RoutingProfile[] = [
  {
    type: "hr",
    description:
      "Human resources: employment, hiring and onboarding, leave and time off, benefits, payroll questions about one's own pay, performance reviews, workplace policies and conduct.",
    keywords: ["hr", "human resources", "employee"],
    examples: [
      "How many vacation days do I have left?",
      "I want to report a problem with my manager",
      "What is the parental leave policy?",
      "When is the next performance review cycle?",
    ],
  },
  {
    type: "finance",
    description:
      "Finance: budgets, expenses and reimbursements, invoices and payments to suppliers, purchase orders, forecasts, accounting and financial reports.",
    keywords: ["finance", "money", "budget"],
    examples: [
      "How much is left in the marketing budget?",
      "I need to submit my travel expenses",
      "Has the supplier invoice been paid?",
      "Can you prepare the quarterly forecast?",
    ],
  },
];

export const BUILTIN_AGENT_TYPES: readonly string[] = [ROUTER_AGENT_TYPE, USER_PROXY_AGENT_TYPE, ...BUILTIN_PROFILES.map((p) => p.type)];

export interface BuiltinOptions {
  readonly router?: RouterOptions;
  readonly task?: TaskAgentOptions;
}

/** The definitions for a `--agents` list; rejects unknown names with the list of known ones. */
export function builtinAgents(names: readonly string[], options: BuiltinOptions = {}): AgentTypeDefinition[] {
  return names.map((name) => {
    if (name === ROUTER_AGENT_TYPE) return new RouterAgentType(options.router);
    if (name === USER_PROXY_AGENT_TYPE) return new UserProxyAgentType();
    const profile = BUILTIN_PROFILES.find((p) => p.type === name);
    if (profile) return new TaskAgentType(profile, options.task);
    throw new ConfigError(`unknown agent type "${name}"; built-in agent types are: ${BUILTIN_AGENT_TYPES.join(", ")}`);
  });
}
