import { create, equals, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampMs, timestampNow } from "@bufbuild/protobuf/wkt";
import type { KV } from "@nats-io/kv";
import { encodeBody } from "../core/codec.js";
import { readAllRecords, readRecord, updateRecord } from "../core/kv-records.js";
import type { Subjects } from "../core/subjects.js";
import type { JetStreamManager } from "@nats-io/jetstream";
import { isValidToken } from "../core/ids.js";
import { KeyedQueue } from "../core/keyed-queue.js";
import type { Logger } from "../core/logging.js";
import { InvalidIdError } from "../core/errors.js";
import {
  AgentRecordSchema,
  AgentTypeSpecSchema,
  WorkerRecordSchema,
  type AgentRecord,
  type RegisterWorkerRequest,
  type WorkerRecord,
} from "../gen/switchboard/v1/registry_pb.js";

/**
 * The agent registry: who serves which agent type. Workers live in the `workers` bucket, agent
 * types in `agents`; every change is a compare-and-set so several hosts can serve at once.
 */
export class Registry {
  /** Updates to one agent type from this host go one at a time; CAS handles other hosts. */
  private readonly agentUpdates = new KeyedQueue();

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    private readonly agents: KV,
    private readonly workers: KV,
    private readonly workerTtlMs: number,
    private readonly logger: Logger,
  ) {}

  async register(request: RegisterWorkerRequest): Promise<void> {
    if (!isValidToken(request.workerId)) throw new InvalidIdError("worker id", request.workerId);
    for (const spec of request.agentTypes) {
      if (!isValidToken(spec.type)) throw new InvalidIdError("agent type", spec.type);
      for (const t of spec.subscriptions) if (!isValidToken(t)) throw new InvalidIdError("topic type", t);
    }
    const now = timestampNow();
    const worker = create(WorkerRecordSchema, {
      workerId: request.workerId,
      hostname: request.hostname.slice(0, 255),
      pid: request.pid,
      agentTypes: request.agentTypes.map((s) => s.type),
      ...(request.startedAt ? { startedAt: request.startedAt } : {}),
      lastHeartbeatAt: now,
    });
    await this.workers.put(worker.workerId, encodeBody(WorkerRecordSchema, worker));
    this.logger.info({ event: "worker.joined", workerId: worker.workerId, workerHost: worker.hostname, pid: worker.pid, agentTypes: worker.agentTypes }, "worker joined");

    for (const spec of request.agentTypes) {
      let isNew = false;
      let specChanged = false;
      let others: string[] = [];
      await this.updateAgent(spec.type, (current) => {
        isNew = current === undefined;
        specChanged = current?.spec !== undefined && !equals(AgentTypeSpecSchema, current.spec, spec);
        others = (current?.workerIds ?? []).filter((id) => id !== request.workerId);
        const workerIds = new Set(current?.workerIds ?? []);
        workerIds.add(request.workerId);
        return create(AgentRecordSchema, {
          spec,
          workerIds: [...workerIds].sort(),
          available: true,
          registeredAt: current?.registeredAt ?? now,
          updatedAt: now,
          workerSpecs: { ...current?.workerSpecs, [request.workerId]: spec },
        });
      });
      if (isNew) this.logger.info({ event: "agent.registered", agentType: spec.type, workerId: request.workerId }, `agent type ${spec.type} registered`);
      else if (specChanged && others.length > 0) {
        // Workers of one type share its messages: two definitions answer the same users by turns
        // (a worker with an agents file beside one with the built-in agent of that type, or a
        // rolling upgrade half done).
        this.logger.warn(
          { event: "agent.definition_conflict", agentType: spec.type, workerId: request.workerId, otherWorkerIds: others },
          `worker ${request.workerId} runs another definition of agent type ${spec.type} than ${others.join(", ")}, which still serve it; they share its messages`,
        );
      } else if (specChanged) this.logger.info({ event: "agent.updated", agentType: spec.type, workerId: request.workerId }, `agent type ${spec.type} updated`);
    }
  }

  /** Records a heartbeat; false when the worker is unknown (expired) and must register again. */
  async heartbeat(workerId: string): Promise<boolean> {
    if (!isValidToken(workerId)) throw new InvalidIdError("worker id", workerId);
    const updated = await updateRecord(this.workers, workerId, WorkerRecordSchema, (current) =>
      current ? { ...current, lastHeartbeatAt: timestampNow() } : undefined,
    );
    return updated !== undefined;
  }

  async deregister(workerId: string): Promise<void> {
    if (!isValidToken(workerId)) throw new InvalidIdError("worker id", workerId);
    const current = await readRecord(this.workers, workerId, WorkerRecordSchema);
    await this.workers.delete(workerId);
    if (current) {
      this.logger.info({ event: "worker.left", workerId }, "worker left");
      await this.removeWorkerFromAgents(workerId, current.value.agentTypes);
    }
  }

  /**
   * Expires workers whose last heartbeat is older than the TTL, drops from every agent type the
   * workers that no longer exist (which also repairs what a host that died mid-update left), and
   * lists again any live worker an agent type is missing.
   * `graceMs` extends the TTL by how long this host itself could not listen: heartbeats that
   * arrived meanwhile wait unread behind the sweep, so the silence is the host's, not the worker's.
   *
   * The sweep reads while workers register and heartbeat. It judges each worker on the record as it
   * is when it acts, never on an earlier listing: a worker that joined, or heartbeated, after the
   * listing is live, and a heartbeat that lands while it acts wins.
   */
  async sweep(nowMs = Date.now(), graceMs = 0): Promise<void> {
    const ttl = this.workerTtlMs + graceMs;
    const isStale = (worker: WorkerRecord) => nowMs - (worker.lastHeartbeatAt ? timestampMs(worker.lastHeartbeatAt) : 0) > ttl;
    const live = new Map<string, WorkerRecord>();
    for (const listed of await this.listWorkers()) {
      if (!isStale(listed)) {
        live.set(listed.workerId, listed);
        continue;
      }
      const current = await readRecord(this.workers, listed.workerId, WorkerRecordSchema);
      if (!current) continue;
      if (!isStale(current.value)) {
        live.set(listed.workerId, current.value);
        continue;
      }
      try {
        // Only delete the revision judged stale: a heartbeat that just landed wins.
        await this.workers.delete(listed.workerId, { previousSeq: current.revision });
      } catch {
        continue;
      }
      const last = current.value.lastHeartbeatAt ? timestampMs(current.value.lastHeartbeatAt) : 0;
      this.logger.warn(
        { event: "worker.expired", workerId: listed.workerId, workerHost: listed.hostname, silentMs: nowMs - last },
        `worker ${listed.workerId} expired: no heartbeat for ${Math.round((nowMs - last) / 1000)} s`,
      );
    }
    for (const agent of await this.listAgents()) {
      const type = agent.spec?.type ?? "";
      const gone = new Set<string>();
      for (const id of agent.workerIds) {
        if (live.has(id)) continue;
        // Not in the listing: gone, or joined after it. Only the record as it is now can tell.
        if (await readRecord(this.workers, id, WorkerRecordSchema)) continue;
        gone.add(id);
      }
      if (gone.size > 0) await this.removeWorkersFromAgent(type, gone);
    }
    await this.relistLiveWorkers(live);
  }

  /**
   * A worker that heartbeats must be listed by each of its agent types. A removal can race with the
   * same worker registering again (after an expiry), and nothing else would ever add it back.
   */
  private async relistLiveWorkers(live: ReadonlyMap<string, WorkerRecord>): Promise<void> {
    const agents = new Map((await this.listAgents()).map((a) => [a.spec?.type ?? "", a]));
    for (const worker of live.values()) {
      for (const type of worker.agentTypes) {
        const agent = agents.get(type);
        if (!agent || agent.workerIds.includes(worker.workerId)) continue;
        if (!(await readRecord(this.workers, worker.workerId, WorkerRecordSchema))) continue;
        let relisted = false;
        await this.updateAgent(type, (current) => {
          if (!current || current.workerIds.includes(worker.workerId)) return undefined;
          relisted = true;
          return { ...current, workerIds: [...current.workerIds, worker.workerId].sort(), available: true, updatedAt: timestampNow() };
        });
        if (relisted) this.logger.warn({ event: "agent.worker_relisted", agentType: type, workerId: worker.workerId }, `worker ${worker.workerId} was missing from agent type ${type}; listed again`);
      }
    }
  }

  private async removeWorkerFromAgents(workerId: string, types: readonly string[]): Promise<void> {
    for (const type of types) await this.removeWorkersFromAgent(type, new Set([workerId]));
  }

  private async removeWorkersFromAgent(type: string, gone: ReadonlySet<string>): Promise<void> {
    if (!isValidToken(type)) return;
    let becameUnavailable = false;
    let restoredFrom: string | undefined;
    await this.updateAgent(type, (current) => {
      if (!current || !current.workerIds.some((id) => gone.has(id))) return undefined;
      const workerIds = current.workerIds.filter((id) => !gone.has(id));
      becameUnavailable = current.available && workerIds.length === 0;
      // Records an older host wrote have no workerSpecs: their definition then stays as it was.
      const workerSpecs = Object.fromEntries(Object.entries(current.workerSpecs).filter(([id]) => !gone.has(id)));
      // The definition the registry shows came from a worker that left: the ones still serving
      // the type define it now (one that registered another definition must not outlive it).
      const remaining = Object.entries(workerSpecs);
      const stale = current.spec !== undefined && remaining.length > 0 && !remaining.some(([, spec]) => equals(AgentTypeSpecSchema, spec, current.spec!));
      const [fromId, spec] = stale ? remaining[0]! : [undefined, current.spec];
      restoredFrom = fromId;
      return { ...current, spec, workerIds, available: workerIds.length > 0, updatedAt: timestampNow(), workerSpecs };
    });
    if (restoredFrom) {
      this.logger.info({ event: "agent.updated", agentType: type, workerId: restoredFrom }, `agent type ${type} is defined by worker ${restoredFrom} again, since the worker whose definition it had left`);
    }
    if (becameUnavailable) {
      this.logger.warn({ event: "agent.unavailable", agentType: type }, `agent type ${type} has no live worker`);
    }
  }

  private updateAgent(type: string, mutate: (current: AgentRecord | undefined) => AgentRecord | undefined): Promise<AgentRecord | undefined> {
    return this.agentUpdates.run(type, () => updateRecord(this.agents, type, AgentRecordSchema, mutate));
  }

  async listAgents(): Promise<AgentRecord[]> {
    return this.readAll(this.agents, this.subjects.agentsBucket, AgentRecordSchema, (a) => a.spec?.type ?? "");
  }

  async listWorkers(): Promise<WorkerRecord[]> {
    return this.readAll(this.workers, this.subjects.workersBucket, WorkerRecordSchema, (w) => w.workerId);
  }

  private async readAll<Desc extends DescMessage>(kv: KV, bucket: string, schema: Desc, sortKey: (v: MessageShape<Desc>) => string): Promise<MessageShape<Desc>[]> {
    const records = await readAllRecords(this.jsm, kv, bucket, schema);
    return records.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
  }
}
