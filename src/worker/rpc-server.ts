import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeEvent, encodeEvent, errorHeaders, wireRegistry } from "../core/codec.js";
import { DecodeError, ErrorCode, errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logging.js";
import { guardReply } from "../core/reply-subject.js";
import type { Discovery } from "../core/telemetry/discovery.js";
import { inHandleSpan, SpanAttribute, spanSafeId } from "../core/telemetry/tracing.js";
import type { Subjects } from "../core/subjects.js";
import { unboundedAbortController } from "../core/sleep.js";
import type { AgentInstances } from "./instances.js";

/**
 * Serves direct `send` requests for one agent type: `<prefix>.rpc.<type>.<key…>` in a queue group
 * shared by the type's workers, so each request is answered by exactly one of them.
 */
export class RpcServer {
  private sub: Subscription | undefined;
  private readonly inflight = new Set<Promise<void>>();
  /**
   * Shared by every in-flight handler, each of which may listen to it (a sleep, a request): as many
   * listeners as messages in flight is expected, not a leak, so Node's warning past 10 is off.
   */
  private readonly abort = unboundedAbortController();

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly instances: AgentInstances,
    private readonly source: string,
    private readonly logger: Logger,
  ) {}

  /** Subscribes, or serves the requests as an endpoint of the worker's micro service when given one. */
  start(discovery?: Discovery): void {
    const subject = this.subjects.rpcFilter(this.instances.type);
    const queue = this.subjects.rpcQueue(this.instances.type);
    const serve = (msg: Msg) => {
      const task = this.handle(msg).finally(() => this.inflight.delete(task));
      this.inflight.add(task);
    };
    if (discovery) {
      discovery.add({ name: this.instances.type, subject, queue, metadata: { agent_type: this.instances.type }, handle: serve });
      return;
    }
    this.sub = this.nc.subscribe(subject, {
      queue,
      callback: (err, msg) => {
        if (err) {
          this.logger.warn({ event: "rpc.subscription_error", err: errorMessage(err) }, "rpc subscription error");
          return;
        }
        guardReply(msg, this.logger, serve);
      },
    });
  }

  private async handle(msg: Msg): Promise<void> {
    const target = this.subjects.parseRpc(msg.subject);
    if (!target) {
      this.reject(msg, ErrorCode.InvalidId, `invalid agent key in ${msg.subject}`);
      return;
    }
    let decoded;
    try {
      decoded = decodeEvent(msg);
    } catch (err) {
      this.reject(msg, err instanceof DecodeError ? err.code : ErrorCode.InvalidMessage, errorMessage(err));
      return;
    }
    try {
      const attributes = { [SpanAttribute.AgentType]: this.instances.type, [SpanAttribute.MessageId]: spanSafeId(decoded.attributes.id), [SpanAttribute.MessageType]: decoded.attributes.type };
      // A direct send continues the sender's trace as an `agent handle` span of its own.
      const response = await inHandleSpan(msg.headers, attributes, 1, () =>
        this.instances.deliver(target.key, decoded.message, {
          topic: undefined,
          eventId: decoded.attributes.id,
          deliveryCount: 1,
          signal: this.abort.signal,
        }),
      );
      if (!response) {
        this.reject(msg, ErrorCode.HandlerFailed, `${this.instances.type} returned no response to ${decoded.attributes.type}`);
        return;
      }
      const schema = wireRegistry.getMessage(response.$typeName);
      if (!schema) throw new Error(`response type ${response.$typeName} is not a switchboard.v1 message`);
      const event = encodeEvent(schema, response, { source: this.source });
      msg.respond(event.data, { headers: event.headers });
    } catch (err) {
      this.reject(msg, ErrorCode.HandlerFailed, `${this.instances.type} failed: ${errorMessage(err)}`);
    }
  }

  private reject(msg: Msg, code: string, message: string): void {
    this.logger.warn({ event: "rpc.rejected", agentType: this.instances.type, reason: code, err: message }, "rpc request rejected");
    msg.respond(new Uint8Array(0), { headers: errorHeaders(code, message) });
  }

  /** Stops taking requests (with a micro service, stopping it does), then waits for those in flight to be answered. */
  async close(): Promise<void> {
    if (this.sub && !this.sub.isClosed()) await this.sub.drain();
    await Promise.allSettled(this.inflight);
  }

  abortInflight(): void {
    this.abort.abort();
  }
}
