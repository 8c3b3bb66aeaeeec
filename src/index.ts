/**
 * The public API of the `switchboard` package. Everything exported here follows semantic
 * versioning (see docs/API.md); anything reachable only through deeper paths may change in any
 * release.
 */

// For agent authors.
export { defineAgent, AgentError } from "./agents/define-agent.js";
export type { AgentDefinition, AgentLogger, AgentOptions, HistoryEntry, JsonValue, ReplyResult, Turn } from "./agents/define-agent.js";
export { createTurn, runReply, type TurnInit, type ReplyRun } from "./agents/define-agent-testing.js";
export { createWorker, type Worker, type WorkerOptions } from "./worker/embedded-worker.js";
export { version } from "./version.js";

// Errors: catch by class or by `code`, never by message.
export { ErrorCode, SwitchboardError, ConfigError, InvalidIdError, TimeoutError, CancelledError, NoRespondersError, PermissionDeniedError, RemoteError } from "./core/errors.js";
export { ConnectionFailedError, AuthenticationFailedError } from "./core/connection.js";

// For library authors: the low-level agent interface the worker runs, on the wire protocol's
// protobuf messages (`schemas/switchboard/v1/*.proto`).
export type { Agent, AgentContext, AgentEnvironment, AgentRuntime, AgentState, AgentTypeDefinition, MessageContext, PublishOptions, SendOptions } from "./worker/agent.js";
