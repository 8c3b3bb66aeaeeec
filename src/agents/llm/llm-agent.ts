import { defineAgent, type AgentDefinition, type Turn } from "../define-agent.js";
import type { LlmAgentConfig } from "./agents-file.js";
import { streamChatCompletion, type ChatMessage } from "./chat-completions.js";

/**
 * Room between the model's time-out and the turn's: the model's fires first, so the user learns
 * that the model was slow (`model_timeout`) rather than that the agent was.
 */
const TURN_MARGIN_MS = 5_000;

/**
 * An agent that answers with a language model behind an OpenAI-compatible chat-completions API,
 * configured in an agents file rather than in code. Each turn sends the system prompt, the
 * conversation so far and the new message, and streams the answer to the chat as it comes. A
 * model that is unreachable, too slow or failing gives the user an `error` event with
 * `model_unreachable`, `model_timeout` or `model_error`.
 */
export function llmAgent(config: LlmAgentConfig): AgentDefinition {
  const model = config.model;
  return defineAgent({
    type: config.type,
    description: config.description,
    keywords: config.keywords,
    // The router wants at least one example; the description is the best one a file without any has.
    examples: config.examples.length > 0 ? config.examples : [config.description],
    displayName: config.name,
    historyLimit: model.historyMessages,
    timeoutMs: model.timeoutMs + TURN_MARGIN_MS,
    reply: (turn) => streamChatCompletion(promptFor(config, turn), { ...model, signal: turn.signal }),
  });
}

/** The system prompt, the conversation so far, and the new message. */
export function promptFor(config: LlmAgentConfig, turn: Pick<Turn, "history" | "text">): ChatMessage[] {
  const system: ChatMessage[] = config.model.systemPrompt ? [{ role: "system", content: config.model.systemPrompt }] : [];
  const history = turn.history.map((e): ChatMessage => ({ role: e.role === "agent" ? "assistant" : "user", content: e.text }));
  return [...system, ...history, { role: "user", content: turn.text }];
}

