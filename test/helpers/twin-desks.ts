import { TaskAgentType } from "../../src/agents/task-agent.js";

/** Two agent types with the same profile: every request that fits one fits the other as well. */
export function twinDesks(): TaskAgentType[] {
  return ["desk-a", "desk-b"].map((type) => new TaskAgentType({ type, description: "Supplier invoices and payments.", keywords: ["invoice"], examples: [] }));
}
