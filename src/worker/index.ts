export type { Agent, AgentContext, AgentEnvironment, AgentRuntime, AgentTypeDefinition, MessageContext, PublishOptions, SendOptions } from "./agent.js";
export { Worker, type WorkerOptions } from "./worker.js";
export { DEFAULT_TOPIC_CONSUMER_OPTIONS, type TopicConsumerOptions } from "./topic-consumer.js";
