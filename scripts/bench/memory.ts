import { ChatSession } from "../../src/cli/chat-session.js";
import type { BenchEnvironment } from "./environment.js";
import { sleep } from "./environment.js";
import type { ClientConnections } from "./connections.js";
import { rssBytes } from "./processes.js";
import { FIRST_MESSAGE } from "./switchboard-users.js";

export interface MemoryResult {
  readonly sessions: number;
  readonly opened: number;
  readonly failed: number;
  readonly rssBeforeBytes: number;
  readonly rssAfterBytes: number;
  readonly bytesPerSession: number;
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
 * Worker memory per idle session: fresh workers are warmed up, their total RSS taken, then
 * `sessions` sessions are opened and left open, and their RSS taken again.
 */
export async function measureIdleSessionMemory(env: BenchEnvironment, workerPids: readonly number[], connections: ClientConnections, sessions: number, timeoutMs: number): Promise<MemoryResult> {
  await openSessions(env, connections, "memwarm", WARMUP_SESSIONS, timeoutMs, false);
  const rssBeforeBytes = await settledRss(workerPids);
  const { opened, failed } = await openSessions(env, connections, "mem", sessions, timeoutMs, true);
  const rssAfterBytes = await settledRss(workerPids);
  return {
    sessions,
    opened,
    failed,
    rssBeforeBytes,
    rssAfterBytes,
    bytesPerSession: opened > 0 ? Math.round((rssAfterBytes - rssBeforeBytes) / opened) : Number.NaN,
  };
}
