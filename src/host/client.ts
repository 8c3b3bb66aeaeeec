import { create } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { requestProto } from "../core/request.js";
import { HostVerb, type Subjects } from "../core/subjects.js";
import {
  DeregisterWorkerRequestSchema,
  DeregisterWorkerResponseSchema,
  GetSessionRequestSchema,
  GetSessionResponseSchema,
  HeartbeatRequestSchema,
  HeartbeatResponseSchema,
  ListAgentsRequestSchema,
  ListDeadLettersRequestSchema,
  ListDeadLettersResponseSchema,
  ReplayDeadLetterRequestSchema,
  ReplayDeadLetterResponseSchema,
  type DeadLetter,
  ListAgentsResponseSchema,
  ListSessionsRequestSchema,
  ListSessionsResponseSchema,
  ListWorkersRequestSchema,
  ListWorkersResponseSchema,
  RegisterWorkerResponseSchema,
  RegisterWorkerRequestSchema,
  type AgentRecord,
  type RegisterWorkerRequest,
  type RegisterWorkerResponse,
  type SessionRecord,
  type WorkerRecord,
} from "../gen/switchboard/v1/registry_pb.js";

const NO_HOST = "no Switchboard host is running; start one with `switchboard host`";

export interface HostCallOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** Typed requests to the host's control plane (any replica answers). */
export class HostClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly defaultTimeoutMs = 5_000,
  ) {}

  private opts(what: string, options: HostCallOptions) {
    return { timeoutMs: options.timeoutMs ?? this.defaultTimeoutMs, signal: options.signal, what, noRespondersHint: NO_HOST };
  }

  register(request: RegisterWorkerRequest, options: HostCallOptions = {}): Promise<RegisterWorkerResponse> {
    return requestProto(this.nc, this.subjects.host(HostVerb.Register), RegisterWorkerRequestSchema, request, RegisterWorkerResponseSchema, this.opts("registering with the host", options));
  }

  async heartbeat(workerId: string, options: HostCallOptions = {}): Promise<boolean> {
    const res = await requestProto(this.nc, this.subjects.host(HostVerb.Heartbeat), HeartbeatRequestSchema, create(HeartbeatRequestSchema, { workerId }), HeartbeatResponseSchema, this.opts("heartbeat", options));
    return res.known;
  }

  async deregister(workerId: string, options: HostCallOptions = {}): Promise<void> {
    await requestProto(this.nc, this.subjects.host(HostVerb.Deregister), DeregisterWorkerRequestSchema, create(DeregisterWorkerRequestSchema, { workerId }), DeregisterWorkerResponseSchema, this.opts("deregistering from the host", options));
  }

  async agents(options: HostCallOptions = {}): Promise<AgentRecord[]> {
    const res = await requestProto(this.nc, this.subjects.host(HostVerb.ListAgents), ListAgentsRequestSchema, create(ListAgentsRequestSchema), ListAgentsResponseSchema, this.opts("listing agent types", options));
    return res.agents;
  }

  async workers(options: HostCallOptions = {}): Promise<WorkerRecord[]> {
    const res = await requestProto(this.nc, this.subjects.host(HostVerb.ListWorkers), ListWorkersRequestSchema, create(ListWorkersRequestSchema), ListWorkersResponseSchema, this.opts("listing workers", options));
    return res.workers;
  }

  /** The newest `limit` sessions, read a page at a time (each reply stays under max_payload). */
  async sessions(limit = 50, options: HostCallOptions = {}): Promise<SessionRecord[]> {
    const sessions: SessionRecord[] = [];
    let offset = 0;
    do {
      const page = create(ListSessionsRequestSchema, { limit: limit - sessions.length, offset });
      const res = await requestProto(this.nc, this.subjects.host(HostVerb.ListSessions), ListSessionsRequestSchema, page, ListSessionsResponseSchema, this.opts("listing sessions", options));
      sessions.push(...res.sessions);
      // A host that does not page answers once with everything it sends.
      offset = res.sessions.length > 0 ? res.nextOffset : 0;
    } while (offset > 0 && sessions.length < limit);
    return sessions;
  }

  async deadLetters(limit = 50, options: HostCallOptions = {}): Promise<DeadLetter[]> {
    const res = await requestProto(this.nc, this.subjects.host(HostVerb.ListDeadLetters), ListDeadLettersRequestSchema, create(ListDeadLettersRequestSchema, { limit }), ListDeadLettersResponseSchema, this.opts("listing dead letters", options));
    return res.deadLetters;
  }

  async replayDeadLetter(seq: number, options: HostCallOptions = {}): Promise<{ eventId: string; subject: string }> {
    const res = await requestProto(this.nc, this.subjects.host(HostVerb.ReplayDeadLetter), ReplayDeadLetterRequestSchema, create(ReplayDeadLetterRequestSchema, { seq: BigInt(seq) }), ReplayDeadLetterResponseSchema, this.opts(`replaying dead letter ${seq}`, options));
    return { eventId: res.eventId, subject: res.subject };
  }

  /** The session, or undefined when the host has no record of it. */
  async session(sessionId: string, options: HostCallOptions = {}): Promise<SessionRecord | undefined> {
    const res = await requestProto(this.nc, this.subjects.host(HostVerb.GetSession), GetSessionRequestSchema, create(GetSessionRequestSchema, { sessionId }), GetSessionResponseSchema, this.opts(`reading session ${sessionId}`, options));
    return res.session;
  }
}
