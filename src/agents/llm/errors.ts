import { ErrorCode } from "../../core/errors.js";
import { AgentError } from "../define-agent.js";

// Each is an AgentError, so that a turn it ends tells the user at once (a model that is down now is
// not retried), under the error's own code.

/** The model's server could not be reached: refused, unresolvable, or the connection broke. */
export class ModelUnreachableError extends AgentError {
  override name = "ModelUnreachableError";
  override readonly code = ErrorCode.ModelUnreachable;
  constructor(
    readonly url: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`the language model at ${url} is unreachable (${detail}); check the agent's model url and that the model server is running`, options);
  }
}

/** The model did not finish its answer within the agent's time-out. */
export class ModelTimeoutError extends AgentError {
  override name = "ModelTimeoutError";
  override readonly code = ErrorCode.ModelTimeout;
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(`the language model at ${url} did not finish answering within ${timeoutMs} ms; try again, or raise the agent's timeoutMs`);
  }
}

/** The model's server answered with an error status, an error event, or something unreadable. */
export class ModelError extends AgentError {
  override name = "ModelError";
  override readonly code = ErrorCode.ModelError;
  constructor(
    readonly url: string,
    /** HTTP status, when the server answered with one other than 2xx. */
    readonly status: number | undefined,
    detail: string,
  ) {
    super(`the language model at ${url} failed${status === undefined ? "" : ` with HTTP ${status}`}: ${detail}`);
  }
}
