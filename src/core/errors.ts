/**
 * Typed errors. Each has a stable `code` so callers catch by class or code, never by parsing
 * messages, and a message that tells a person what to do next.
 */
export const ErrorCode = {
  InvalidId: "invalid_id",
  InvalidMessage: "invalid_message",
  InvalidChoice: "invalid_choice",
  UnknownType: "unknown_type",
  InvalidSpecVersion: "invalid_specversion",
  InvalidEventId: "invalid_event_id",
  InvalidSource: "invalid_source",
  InvalidEventType: "invalid_event_type",
  InvalidTime: "invalid_time",
  UnsupportedContentType: "unsupported_content_type",
  TypeNotAllowed: "type_not_allowed",
  Timeout: "timeout",
  NoResponders: "no_responders",
  Cancelled: "cancelled",
  AgentUnavailable: "agent_unavailable",
  UnknownAgent: "unknown_agent",
  HandlerFailed: "handler_failed",
  NotFound: "not_found",
  Config: "config",
  Connection: "connection",
  Unauthenticated: "unauthenticated",
  PermissionDenied: "permission_denied",
  RateLimited: "rate_limited",
  Remote: "remote",
  AgentFailed: "agent_failed",
  ModelUnreachable: "model_unreachable",
  ModelTimeout: "model_timeout",
  ModelError: "model_error",
  StartupFailed: "startup_failed",
  PublishFailed: "publish_failed",
  NoConversation: "no_conversation",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class SwitchboardError extends Error {
  override name = "SwitchboardError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A value that must become a subject token or KV key does not fit `[A-Za-z0-9_-]{1,64}`. */
export class InvalidIdError extends SwitchboardError {
  override name = "InvalidIdError";
  constructor(
    readonly kind: string,
    readonly value: string,
  ) {
    super(
      ErrorCode.InvalidId,
      `invalid ${kind} ${JSON.stringify(value.slice(0, 80))}: use 1-64 characters from A-Z, a-z, 0-9, '_' and '-'`,
    );
  }
}

/** An event could not be decoded: missing header, unknown `ce-type`, or malformed protobuf. */
export class DecodeError extends SwitchboardError {
  override name = "DecodeError";
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

export class TimeoutError extends SwitchboardError {
  override name = "TimeoutError";
  constructor(what: string, timeoutMs: number) {
    super(ErrorCode.Timeout, `${what}: no answer within ${timeoutMs} ms`);
  }
}

export class NoRespondersError extends SwitchboardError {
  override name = "NoRespondersError";
  constructor(
    readonly subject: string,
    hint: string,
  ) {
    super(ErrorCode.NoResponders, `nobody is listening on ${subject}: ${hint}`);
  }
}

export class CancelledError extends SwitchboardError {
  override name = "CancelledError";
  constructor(what: string) {
    super(ErrorCode.Cancelled, `${what}: cancelled by the caller`);
  }
}

/** The far side of a request answered with an error (`sb-error-code` / `sb-error-message`). */
export class RemoteError extends SwitchboardError {
  override name = "RemoteError";
  constructor(
    readonly remoteCode: string,
    message: string,
  ) {
    super(ErrorCode.Remote, message);
  }
}

/**
 * The server refused an operation for these credentials (a NATS "Permissions Violation" or a
 * JetStream 403): the operation is outside what this identity's role allows.
 */
export class PermissionDeniedError extends SwitchboardError {
  override name = "PermissionDeniedError";
  constructor(
    readonly operation: "publish" | "subscribe" | "request",
    readonly subject: string,
    hint: string,
    options?: ErrorOptions,
  ) {
    const verb = operation === "subscribe" ? "subscribing to" : operation === "request" ? "sending a request to" : "publishing to";
    super(ErrorCode.PermissionDenied, `permission denied ${verb} ${subject}: ${hint}`, options);
  }
}

export class ConfigError extends SwitchboardError {
  override name = "ConfigError";
  constructor(message: string) {
    super(ErrorCode.Config, message);
  }
}

/** A process that had to start did not (its log says why); a failure at run time, not of usage. */
export class StartupFailedError extends SwitchboardError {
  override name = "StartupFailedError";
  constructor(message: string) {
    super(ErrorCode.StartupFailed, message);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
