import { ChatSession } from "../../src/cli/chat-session.js";
import { sleep } from "../../src/core/sleep.js";
import type { BenchEnvironment } from "./environment.js";
import type { ClientConnections } from "./connections.js";
import { readFileSync } from "node:fs";
import { rssBytes, type Child } from "./processes.js";
import { FIRST_MESSAGE } from "./switchboard-users.js";

export interface MemoryResult {
  readonly sessions: number;
  readonly opened: number;
  readonly failed: number;
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  /** RSS delta per session: includes heap the allocator has not returned to the system. */
  readonly rssBytesPerSession: number;
  /** V8 heap plus external memory after a full collection, before and after. */
  readonly heapBeforeBytes: number;
  readonly heapAfterBytes: number;
  /** What the worker holds per session: the heap delta after a full collection. */
  readonly bytesPerSession: number;
}

interface HeapFigures {
  readonly at: number;
  readonly heapUsed: number;
  readonly external: number;
}

const OPENERS = 50;
const WARMUP_SESSIONS = 500;

/** Total RSS once the processes have settled: the lowest of a few samples, taken after a pause. */
async function settledRss(pids: readonly number[]): Promise<number> {
  await sleep(3_000);
  let low = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    low = Math.min(low, pids.reduce((sum, pid) => sum + rssBytes(pid), 0));
    await sleep(400);
  }
  return low;
}

/**
 * Heap plus external memory of the workers after a full garbage collection, from the heap probe
 * preloaded into each (SIGUSR2 makes it collect and write its figures).
 */
async function heapAfterGc(env: BenchEnvironment, workers: readonly Child[]): Promise<number> {
  let total = 0;
  for (const worker of workers) {
    const file = env.heapFile(worker.name);
    const asked = Date.now();
    worker.proc.kill("SIGUSR2");
    for (let waited = 0; ; waited += 50) {
      const figures = readHeapFile(file);
      if (figures && figures.at >= asked) {
        total += figures.heapUsed + figures.external;
        break;
      }
      if (waited > 10_000) throw new Error(`${worker.name} did not report its heap within 10 s (is scripts/bench/heap-probe.mjs preloaded?)`);
      await sleep(50);
    }
  }
  return total;
}

function readHeapFile(file: string): HeapFigures | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as HeapFigures;
  } catch {
    return undefined;
  }
}

/** Opens `count` sessions (a first message each, answered, never ended) through `OPENERS` users. */
async function openSessions(env: BenchEnvironment, connections: ClientConnections, tag: string, count: number, timeoutMs: number, progress: boolean): Promise<{ opened: number; failed: number }> {
  let next = 0;
  let opened = 0;
  let failed = 0;
  const timer = progress ? setInterval(() => process.stderr.write(`  [idle sessions] opened ${opened}/${count}  failed=${failed}\n`), 2_000) : undefined;
  const runOpener = async (i: number) => {
    const user = `${tag}u${i}`;
    const chat = new ChatSession({ nc: await connections.get(user), subjects: env.subjects, user, logger: env.logger, replyTimeoutMs: timeoutMs });
    await chat.start();
    try {
      while (next < count) {
        next++;
        const events = await chat.send(FIRST_MESSAGE);
        if (events[events.length - 1]?.event === "reply") opened++;
        else failed++;
        // Leave the session open and start another: the agent instances stay in the worker.
        chat.newSession();
      }
    } finally {
      await chat.close();
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(OPENERS, count) }, (_, i) => runOpener(i)));
  } finally {
    if (timer) clearInterval(timer);
  }
  return { opened, failed };
}

/**
 * Worker memory per idle session: fresh workers are warmed up, their total RSS and their heap
 * after a full collection taken, then `sessions` sessions are opened and left open, and both
 * taken again.
 */
export async function measureIdleSessionMemory(env: BenchEnvironment, workers: readonly Child[], connections: ClientConnections, sessions: number, timeoutMs: number): Promise<MemoryResult> {
  const pids = workers.map((w) => w.pid);
  await openSessions(env, connections, "memwarm", WARMUP_SESSIONS, timeoutMs, false);
  const heapBeforeBytes = await heapAfterGc(env, workers);
  const rssBeforeBytes = await settledRss(pids);
  const { opened, failed } = await openSessions(env, connections, "mem", sessions, timeoutMs, true);
  const heapAfterBytes = await heapAfterGc(env, workers);
  const rssAfterBytes = await settledRss(pids);
  const perSession = (before: number, after: number) => (opened > 0 ? Math.round((after - before) / opened) : Number.NaN);
  return {
    sessions,
    opened,
    failed,
    rssBeforeBytes,
    rssAfterBytes,
    rssBytesPerSession: perSession(rssBeforeBytes, rssAfterBytes),
    heapBeforeBytes,
    heapAfterBytes,
    bytesPerSession: perSession(heapBeforeBytes, heapAfterBytes),
  };
}
