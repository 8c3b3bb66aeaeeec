import type { KV, KvWatchEntry } from "@nats-io/kv";
import { Kvm } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeBody } from "../core/codec.js";
import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logging.js";
import type { Subjects } from "../core/subjects.js";
import { AgentRecordSchema, type AgentRecord } from "../gen/switchboard/v1/registry_pb.js";
import type { RoutingProfile } from "../router/classifier.js";

/** How long start() waits for the initial registry contents before going on with what it has. */
const INITIAL_LOAD_TIMEOUT_MS = 5_000;

/**
 * A live, read-only view of the `agents` bucket. Calls `onChange` with the routable, available
 * agent types whenever the registry changes, so the router never restarts to learn about a new
 * agent type and never picks one without a live worker.
 */
export class RegistryView {
  private readonly records = new Map<string, AgentRecord>();
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
    private readonly onChange: (profiles: readonly RoutingProfile[]) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    const kv: KV = await new Kvm(this.nc).open(this.subjects.agentsBucket);
    const status = await kv.status();
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    if (status.values === 0) markReady();
    this.watcher = await kv.watch();
    this.loop = this.follow(this.watcher, markReady);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, INITIAL_LOAD_TIMEOUT_MS)))]);
    clearTimeout(timer);
    this.publish();
  }

  private async follow(watcher: QueuedIterator<KvWatchEntry>, markReady: () => void): Promise<void> {
    let initialized = false;
    for await (const entry of watcher) {
      try {
        if (entry.operation === "PUT") this.records.set(entry.key, decodeBody(AgentRecordSchema, entry.value));
        else this.records.delete(entry.key);
      } catch (err) {
        this.logger.warn({ event: "registry.bad_record", agentType: entry.key, err: errorMessage(err) }, "unreadable agent record ignored");
      }
      if (!initialized && (entry.delta === 0 || entry.isUpdate)) {
        initialized = true;
        markReady();
      }
      if (initialized) this.publish();
    }
  }

  /** Routable agent types with at least one live worker. */
  profiles(): RoutingProfile[] {
    const out: RoutingProfile[] = [];
    for (const record of this.records.values()) {
      const spec = record.spec;
      if (!spec || !spec.routable || !record.available) continue;
      out.push({ type: spec.type, description: spec.description, keywords: spec.keywords, examples: spec.examples });
    }
    return out.sort((a, b) => a.type.localeCompare(b.type));
  }

  /** Whether an agent type is registered and has a live worker. */
  isAvailable(type: string): boolean {
    return this.records.get(type)?.available === true;
  }

  /** Whether the agent type is known at all (with or without live workers). */
  isKnown(type: string): boolean {
    return this.records.has(type);
  }

  /** Whether some agent type with a live worker subscribes to the topic type. */
  hasLiveSubscriber(topicType: string): boolean {
    for (const record of this.records.values()) {
      if (record.available && record.spec?.subscriptions.includes(topicType)) return true;
    }
    return false;
  }

  private publish(): void {
    this.onChange(this.profiles());
  }

  async close(): Promise<void> {
    this.watcher?.stop();
    await this.loop;
  }
}
