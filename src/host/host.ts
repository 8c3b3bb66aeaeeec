import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { decodeBody, encodeBody, errorHeaders } from "../core/codec.js";
import { lostSince } from "../core/connection.js";
import { ErrorCode, errorMessage, SwitchboardError } from "../core/errors.js";
import { isValidToken, newId } from "../core/ids.js";
import { readAllRecords, readRecord } from "../core/kv-records.js";
import type { Logger } from "../core/logging.js";
import { isVulnerableNatsServerVersion, vulnerableServerAdvice } from "../core/server-version.js";
import { HostVerb, type Subjects } from "../core/subjects.js";
import { Discovery, ServiceName } from "../core/telemetry/discovery.js";
import {
  DeregisterWorkerRequestSchema,
  DeregisterWorkerResponseSchema,
  GetSessionRequestSchema,
  GetSessionResponseSchema,
  HeartbeatRequestSchema,
  HeartbeatResponseSchema,
  ListDeadLettersRequestSchema,
  ListDeadLettersResponseSchema,
  ReplayDeadLetterRequestSchema,
  ReplayDeadLetterResponseSchema,
  ListAgentsResponseSchema,
  ListSessionsRequestSchema,
  ListSessionsResponseSchema,
  type ListSessionsResponse,
  ListWorkersResponseSchema,
  RegisterWorkerRequestSchema,
  RegisterWorkerResponseSchema,
  SessionRecordSchema,
  type SessionRecord,
} from "../gen/switchboard/v1/registry_pb.js";
import { DEFAULT_INFRASTRUCTURE, ensureBuckets, ensureDeadLetterStream, ensureEventStream, ensureRoutingBucket, type Buckets, type InfrastructureOptions } from "./infrastructure.js";
import { DeadLetters } from "./dead-letters.js";
import { MaxDeliveriesWatch } from "./max-deliveries.js";
import { Registry } from "./registry.js";
import { RegistryView } from "./registry-view.js";
import { SessionProjector } from "./session-projector.js";
import { StreamWatch } from "./stream-watch.js";

export interface HostOptions {
  readonly nc: NatsConnection;
  readonly subjects: Subjects;
  readonly logger: Logger;
  /** Interval workers are told to heartbeat at. */
  readonly heartbeatIntervalMs: number;
  /** A worker silent for this long is expired. */
  readonly workerTtlMs: number;
  readonly infrastructure?: Partial<InfrastructureOptions>;
  /** Default: a fresh random id. */
  readonly hostId?: string;
  /** How often the event stream's first sequence is checked for an unexpected jump. */
  readonly streamWatchIntervalMs?: number;
}

const STREAM_WATCH_INTERVAL_MS = 30_000;

const MAX_SESSIONS_LISTED = 1_000;
/** Bytes of session records in one `admin.sessions` reply: half the server's 1 MB max_payload. */
const MAX_REPLY_BYTES = 512 * 1024;

/**
 * The control plane: creates the stream and buckets, serves registration, heartbeats and admin
 * queries, expires silent workers and keeps session state. Any number of hosts may run at once;
 * none of them is on the path of a user's message.
 */
export class Host {
  readonly id: string;
  private readonly nc: NatsConnection;
  private readonly subjects: Subjects;
  private readonly logger: Logger;
  private buckets: Buckets | undefined;
  private jsm: JetStreamManager | undefined;
  private registry: Registry | undefined;
  private projector: SessionProjector | undefined;
  private directory: RegistryView | undefined;
  private discovery: Discovery | undefined;
  private maxDeliveries: MaxDeliveriesWatch | undefined;
  private streamWatch: StreamWatch | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  /** A sweep failure has been reported and no sweep has succeeded since. */
  private sweepFailing = false;
  private closing: Promise<void> | undefined;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(private readonly options: HostOptions) {
    this.id = options.hostId ?? newId("h");
    this.nc = options.nc;
    this.subjects = options.subjects;
    this.logger = options.logger.child({ component: "host", hostId: this.id });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  async start(): Promise<void> {
    const infra = { ...DEFAULT_INFRASTRUCTURE, ...this.options.infrastructure };
    const jsm = await jetstreamManager(this.nc);
    this.jsm = jsm;
    await ensureEventStream(jsm, this.subjects, infra);
    await ensureDeadLetterStream(jsm, this.subjects, infra);
    this.buckets = await ensureBuckets(this.nc, jsm, this.subjects, infra);
    await ensureRoutingBucket(this.nc, jsm, this.subjects, infra).catch((err: unknown) => {
      this.logger.warn({ event: "host.routing_bucket_unavailable", bucket: this.subjects.routingBucket, err: errorMessage(err) }, "cannot create the routing bucket; routers will not learn from use (bring the accounts file up to date: switchboard auth init, then switchboard auth reload)");
    });
    this.registry = new Registry(jsm, this.subjects, this.buckets.agents, this.buckets.workers, this.options.workerTtlMs, this.logger);
    this.directory = new RegistryView(this.nc, this.subjects, this.logger);
    await this.directory.start();
    this.projector = new SessionProjector(this.nc, jetstream(this.nc), jsm, this.subjects, this.buckets.sessions, this.directory, this.logger, this.id);
    await this.projector.start();
    this.maxDeliveries = new MaxDeliveriesWatch(this.nc, jetstream(this.nc), jsm, this.subjects, this.logger, `switchboard/host/${this.id}`);
    this.maxDeliveries.start();
    this.streamWatch = new StreamWatch(jsm, { stream: this.subjects.eventStream, maxAgeMs: infra.eventMaxAgeMs, intervalMs: this.options.streamWatchIntervalMs ?? STREAM_WATCH_INTERVAL_MS }, this.logger);
    await this.streamWatch.start();
    // Served as the endpoint of a NATS micro service, so `$SRV.PING|INFO|STATS` find the host.
    this.discovery = new Discovery(
      this.nc,
      { name: ServiceName.Host, description: "Switchboard host: registry, session state, admin queries", metadata: { host_id: this.id }, stats: () => this.stats() },
      this.logger,
    );
    await this.discovery.start();
    this.discovery.add({
      name: "requests",
      subject: this.subjects.hostAll,
      queue: this.subjects.hostQueue,
      handle: (msg) => {
        const task = this.serve(msg).finally(() => this.inflight.delete(task));
        this.inflight.add(task);
      },
    });
    // The subscription is live on the server before anyone is told the host has started.
    await this.nc.flush();
    this.scheduleSweep(true);
    this.logger.info({ event: "host.started", stream: this.subjects.eventStream, replicas: infra.replicas }, "host started");
    const version = this.nc.info?.version ?? "";
    if (isVulnerableNatsServerVersion(version)) this.logger.warn({ event: "host.server_vulnerable", version }, vulnerableServerAdvice(version));
  }

  private scheduleSweep(first = false): void {
    // After a (re)start, give live workers one TTL to heartbeat before judging them: their last
    // heartbeat may be old only because no host was there to record it.
    const every = first ? this.options.workerTtlMs : Math.max(250, Math.min(this.options.heartbeatIntervalMs, this.options.workerTtlMs / 4));
    const dueAt = Date.now() + every;
    this.sweepTimer = setTimeout(() => {
      // A timer that fires late means this process was stalled (CPU starvation, a long pause):
      // the heartbeats of that time are still unread.
      const lateMs = Math.max(0, Date.now() - dueAt);
      const startedAtMs = Date.now();
      this.sweeping = (this.registry?.sweep(Date.now(), lateMs) ?? Promise.resolve())
        .then(() => {
          this.sweepFailing = false;
        })
        .catch((err: unknown) => this.sweepFailed(err, startedAtMs))
        .finally(() => {
          this.sweeping = undefined;
          if (!this.closing) this.scheduleSweep();
        });
    }, every);
  }

  /**
   * Reported once per run of failures. A sweep that fails while the server is away (or as the host
   * stops) fails for that reason alone, which the connection's own line reports.
   */
  private sweepFailed(err: unknown, startedAtMs: number): void {
    const fields = { event: "host.sweep_failed", err: errorMessage(err) };
    if (this.sweepFailing || this.closing || lostSince(this.nc, startedAtMs)) {
      this.logger.debug(fields, "worker expiry sweep failed");
    } else {
      this.sweepFailing = true;
      this.logger.warn(fields, "worker expiry sweep failed; retrying");
    }
  }

  private async serve(msg: Msg): Promise<void> {
    const verb = this.subjects.parseHostVerb(msg.subject) ?? "";
    try {
      const body = await this.answer(verb, msg.data);
      msg.respond(body);
    } catch (err) {
      const code = err instanceof SwitchboardError ? err.code : ErrorCode.HandlerFailed;
      this.logger.warn({ event: "host.request_failed", verb, reason: code, err: errorMessage(err) }, "host request failed");
      msg.respond(new Uint8Array(0), { headers: errorHeaders(code, errorMessage(err)) });
    }
  }

  private async answer(verb: string, data: Uint8Array): Promise<Uint8Array> {
    const registry = this.registry;
    const buckets = this.buckets;
    if (!registry || !buckets) throw new SwitchboardError(ErrorCode.Remote, "host is starting");
    switch (verb) {
      case HostVerb.Register: {
        await registry.register(decodeBody(RegisterWorkerRequestSchema, data));
        return encodeBody(RegisterWorkerResponseSchema, create(RegisterWorkerResponseSchema, { heartbeatIntervalMs: this.options.heartbeatIntervalMs, workerTtlMs: this.options.workerTtlMs }));
      }
      case HostVerb.Heartbeat: {
        const known = await registry.heartbeat(decodeBody(HeartbeatRequestSchema, data).workerId);
        return encodeBody(HeartbeatResponseSchema, create(HeartbeatResponseSchema, { known }));
      }
      case HostVerb.Deregister: {
        await registry.deregister(decodeBody(DeregisterWorkerRequestSchema, data).workerId);
        return encodeBody(DeregisterWorkerResponseSchema, create(DeregisterWorkerResponseSchema));
      }
      case HostVerb.ListAgents:
        return encodeBody(ListAgentsResponseSchema, create(ListAgentsResponseSchema, { agents: await registry.listAgents() }));
      case HostVerb.ListWorkers:
        return encodeBody(ListWorkersResponseSchema, create(ListWorkersResponseSchema, { workers: await registry.listWorkers() }));
      case HostVerb.ListSessions: {
        const { limit, offset } = decodeBody(ListSessionsRequestSchema, data);
        return encodeBody(ListSessionsResponseSchema, await this.listSessions(limit > 0 ? Math.min(limit, MAX_SESSIONS_LISTED) : 50, Math.max(0, offset)));
      }
      case HostVerb.GetSession: {
        const { sessionId } = decodeBody(GetSessionRequestSchema, data);
        if (!isValidToken(sessionId)) throw new SwitchboardError(ErrorCode.InvalidId, `invalid session id ${JSON.stringify(sessionId.slice(0, 80))}`);
        const session = (await readRecord(buckets.sessions, sessionId, SessionRecordSchema))?.value;
        return encodeBody(GetSessionResponseSchema, create(GetSessionResponseSchema, session ? { session } : {}));
      }
      case HostVerb.ListDeadLetters: {
        const { limit } = decodeBody(ListDeadLettersRequestSchema, data);
        const deadLetters = await this.deadLetters().list(limit > 0 ? Math.min(limit, MAX_SESSIONS_LISTED) : 50);
        return encodeBody(ListDeadLettersResponseSchema, create(ListDeadLettersResponseSchema, { deadLetters }));
      }
      case HostVerb.ReplayDeadLetter: {
        const { seq } = decodeBody(ReplayDeadLetterRequestSchema, data);
        const replayed = await this.deadLetters().replay(Number(seq));
        this.logger.info({ event: "dead_letter.replayed", seq: Number(seq), subject: replayed.subject }, "dead letter replayed");
        return encodeBody(ReplayDeadLetterResponseSchema, create(ReplayDeadLetterResponseSchema, replayed));
      }
      default:
        throw new SwitchboardError(ErrorCode.NotFound, `unknown host request ${JSON.stringify(verb.slice(0, 60))}`);
    }
  }

  /** The STATS data of the host's endpoint: what the dead-letter stream holds. */
  private async stats(): Promise<unknown> {
    try {
      const info = await this.jsm?.streams.info(this.subjects.deadLetterStream);
      return { hostId: this.id, deadLetters: info?.state.messages ?? 0 };
    } catch (err) {
      this.logger.debug({ event: "stats.dead_letters_failed", err: errorMessage(err) }, "could not read the dead-letter stream");
      return { hostId: this.id };
    }
  }

  private deadLetters(): DeadLetters {
    if (!this.jsm) throw new SwitchboardError(ErrorCode.Remote, "host is starting");
    return new DeadLetters(this.jsm, jetstream(this.nc), this.subjects);
  }

  /**
   * One page of sessions, newest first: from `offset`, at most `limit`, and no more than fit in
   * {@link MAX_REPLY_BYTES}, so a reply never exceeds the server's max_payload whatever the
   * records hold. A record too large for a page on its own is listed without its transcript
   * (`admin.session` reads it whole).
   */
  private async listSessions(limit: number, offset: number): Promise<ListSessionsResponse> {
    const { buckets, jsm } = this;
    if (!buckets || !jsm) return create(ListSessionsResponseSchema);
    const records = await readAllRecords(jsm, buckets.sessions, this.subjects.sessionsBucket, SessionRecordSchema, this.subjects.sessionKeysFilter);
    const updated = (s: SessionRecord) => (s.updatedAt ? timestampMs(s.updatedAt) : 0);
    const newest = records.sort((a, b) => updated(b) - updated(a)).slice(offset, offset + limit);
    const sessions: SessionRecord[] = [];
    let bytes = 0;
    for (const record of newest) {
      let size = encodeBody(SessionRecordSchema, record).length;
      const listed = size > MAX_REPLY_BYTES ? { ...record, transcript: [] } : record;
      if (listed !== record) size = encodeBody(SessionRecordSchema, listed).length;
      if (sessions.length > 0 && bytes + size > MAX_REPLY_BYTES) break;
      sessions.push(listed);
      bytes += size;
    }
    const next = offset + sessions.length;
    return create(ListSessionsResponseSchema, { sessions, nextOffset: sessions.length < newest.length && next < records.length ? next : 0 });
  }

  /** Stops serving, finishes requests in flight, stops the projector. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    await this.discovery?.close();
    await Promise.allSettled(this.inflight);
    await this.sweeping;
    await this.maxDeliveries?.close();
    await this.streamWatch?.close();
    await this.projector?.close();
    await this.directory?.close();
    this.logger.info({ event: "host.stopped" }, "host stopped");
    this.resolveDone();
  }

  closed(): Promise<void> {
    return this.done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
