import type { KV } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { BucketMirror } from "../core/bucket-mirror.js";
import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logging.js";
import type { Subjects } from "../core/subjects.js";
import { AgentRecordSchema } from "../gen/switchboard/v1/registry_pb.js";
import type { RoutingProfile } from "../router/classifier.js";

/**
 * A live, read-only view of the `agents` bucket. Calls `onChange` with the routable, available
 * agent types whenever the registry changes, so the router never restarts to learn about a new
 * agent type and never picks one without a live worker.
 */
export class RegistryView {
  private readonly mirror = new BucketMirror(AgentRecordSchema, {
    onChange: () => this.publish(),
    onBadRecord: (key, err) => this.logger.warn({ event: "registry.bad_record", agentType: key, err: errorMessage(err) }, "unreadable agent record ignored"),
  });

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
    private readonly onChange: (profiles: readonly RoutingProfile[]) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    const kv: KV = await new Kvm(this.nc).open(this.subjects.agentsBucket);
    await this.mirror.start(kv);
    this.publish();
  }

  /** Routable agent types with at least one live worker. */
  profiles(): RoutingProfile[] {
    const out: RoutingProfile[] = [];
    for (const record of this.mirror.records.values()) {
      const spec = record.spec;
      if (!spec || !spec.routable || !record.available) continue;
      out.push({ type: spec.type, description: spec.description, keywords: spec.keywords, examples: spec.examples });
    }
    return out.sort((a, b) => a.type.localeCompare(b.type));
  }

  /** Whether an agent type is registered and has a live worker. */
  isAvailable(type: string): boolean {
    return this.mirror.records.get(type)?.available === true;
  }

  /** Whether the agent type is registered as one the router may route to (with or without live workers). */
  isRoutable(type: string): boolean {
    return this.mirror.records.get(type)?.spec?.routable === true;
  }

  /** Routable agent types registered, with or without live workers. */
  routableTypes(): string[] {
    return [...this.mirror.records.values()].flatMap((r) => (r.spec?.routable ? [r.spec.type] : [])).sort();
  }

  /** Whether the agent type is known at all (with or without live workers). */
  isKnown(type: string): boolean {
    return this.mirror.records.has(type);
  }

  /** Whether some agent type with a live worker subscribes to the topic type. */
  hasLiveSubscriber(topicType: string): boolean {
    for (const record of this.mirror.records.values()) {
      if (record.available && record.spec?.subscriptions.includes(topicType)) return true;
    }
    return false;
  }

  private publish(): void {
    this.onChange(this.profiles());
  }

  async close(): Promise<void> {
    await this.mirror.close();
  }
}
