import { ErrorCode, SwitchboardError } from "../../core/errors.js";

/** The model's server could not be reached: refused, unresolvable, or the connection broke. */
export class ModelUnreachableError extends SwitchboardError {
  override name = "ModelUnreachableError";
  constructor(
    readonly url: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(ErrorCode.ModelUnreachable, `the language model at ${url} is unreachable (${detail}); check the agent's model url and that the model server is running`, options);
  }
}

/** The model did not finish its answer within the agent's time-out. */
export class ModelTimeoutError extends SwitchboardError {
  override name = "ModelTimeoutError";
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
  ) {
    super(ErrorCode.ModelTimeout, `the language model at ${url} did not finish answering within ${timeoutMs} ms; try again, or raise the agent's timeoutMs`);
  }
}

/** The model's server answered with an error status, an error event, or something unreadable. */
export class ModelError extends SwitchboardError {
  override name = "ModelError";
  constructor(
    readonly url: string,
    /** HTTP status, when the server answered with one other than 2xx. */
    readonly status: number | undefined,
    detail: string,
  ) {
    super(ErrorCode.ModelError, `the language model at ${url} failed${status === undefined ? "" : ` with HTTP ${status}`}: ${detail}`);
  }
}
