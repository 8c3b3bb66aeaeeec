import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { performance } from "node:perf_hooks";
import { readRecord } from "../../src/core/kv-records.js";
import { sleep } from "../../src/core/sleep.js";
import { ProjectorCheckpointSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import type { BenchEnvironment } from "./environment.js";
import type { ClientConnections } from "./connections.js";
import { runLoad } from "./load.js";
import type { Child } from "./processes.js";
import { SwitchboardUsers } from "./switchboard-users.js";

export interface CatchUpResult {
  readonly backlogEvents: number;
  /** From starting the host process until its consumer had nothing pending. */
  readonly totalS: number;
  /** From the first event the host applied until it had nothing pending. */
  readonly applyS: number;
  readonly eventsPerS: number;
}

/** Events in the stream after the host's projection checkpoint. */
async function outstanding(jsm: JetStreamManager, env: BenchEnvironment): Promise<number> {
  const [stream, checkpoint] = await Promise.all([
    jsm.streams.info(env.subjects.eventStream),
    new Kvm(env.nc).open(env.subjects.sessionsBucket).then((kv) => readRecord(kv, env.subjects.projectorCheckpointKey, ProjectorCheckpointSchema)),
  ]);
  return Math.max(0, stream.state.last_seq - Number(checkpoint?.value.seq ?? 0n));
}

async function waitUntilCaughtUp(jsm: JetStreamManager, env: BenchEnvironment, timeoutMs: number, onPoll?: (left: number) => void): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await outstanding(jsm, env);
    onPoll?.(left);
    if (left === 0) return;
    if (Date.now() > deadline) throw new Error(`the host still had ${left} events to apply after ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

/**
 * Host catch-up speed: with the host stopped, real sessions are run through the workers until
 * `backlog` events are in the stream; then the host is started and timed until its projection
 * checkpoint reaches the end of the stream.
 */
export async function measureCatchUp(env: BenchEnvironment, host: Child, connections: ClientConnections, backlog: number, followups: number, timeoutMs: number): Promise<{ result: CatchUpResult; host: Child }> {
  const jsm = await jetstreamManager(env.nc);
  // Start from a host that has applied everything so far, so the backlog is exactly what follows.
  await waitUntilCaughtUp(jsm, env, 300_000);
  await env.group.stop(host);
  // Events per whole session: first message (user, Routed, forward, reply, reply out) + 3 per later turn.
  const eventsPerSession = 5 + 3 * (followups + 1);
  const sessions = Math.ceil(backlog / eventsPerSession);
  process.stderr.write(`  [catch-up] host stopped; generating a backlog of ~${sessions * eventsPerSession} events (${sessions} sessions)\n`);
  await runLoad(new SwitchboardUsers(connections, env.subjects, env.logger, "backlog", timeoutMs), { system: "backlog", concurrency: 20, sessions, followups, accounted: [] });
  const backlogEvents = await outstanding(jsm, env);
  process.stderr.write(`  [catch-up] ${backlogEvents} events waiting; starting the host\n`);
  const started = performance.now();
  const restarted = await env.startHost();
  let firstApplied: number | undefined;
  let lastReport = 0;
  await waitUntilCaughtUp(jsm, env, 600_000, (left) => {
    if (firstApplied === undefined && left < backlogEvents) firstApplied = performance.now();
    if (performance.now() - lastReport > 2_000) {
      lastReport = performance.now();
      process.stderr.write(`  [catch-up] ${left} events left\n`);
    }
  });
  const end = performance.now();
  const applyS = (end - (firstApplied ?? started)) / 1000;
  return {
    host: restarted,
    result: {
      backlogEvents,
      totalS: Math.round((end - started) / 10) / 100,
      applyS: Math.round(applyS * 100) / 100,
      eventsPerS: Math.round(backlogEvents / Math.max(applyS, 0.001)),
    },
  };
}
