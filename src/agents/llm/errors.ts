import { ErrorCode } from "../../core/errors.js";
import { AgentError } from "../define-agent.js";

// Each is an AgentError, so that a turn it ends tells the user at once (a model that is down now is
// not retried), under the error's own code. The user is told what happened in general words; the
// message, with the model's URL and what its server said, is for the worker's log: neither is the
// chat user's business, and a provider's error text may echo credentials.

/** The model's server could not be reached: refused, unresolvable, or the connection broke. */
export class ModelUnreachableError extends AgentError {
  override name = "ModelUnreachableError";
  override readonly code = ErrorCode.ModelUnreachable;
  constructor(
    readonly url: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super("the language model this agent uses cannot be reached right now; try again later", options);
    this.message = `the language model at ${url} is unreachable (${detail}); check the agent's model url and that the model server is running`;
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
    super("the language model this agent uses did not answer in time; try again");
    this.message = `the language model at ${url} did not finish answering within ${timeoutMs} ms; try again, or raise the agent's timeoutMs`;
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
    super("the language model this agent uses failed to answer; try again later");
    this.message = `the language model at ${url} failed${status === undefined ? "" : ` with HTTP ${status}`}: ${detail}`;
  }
}
