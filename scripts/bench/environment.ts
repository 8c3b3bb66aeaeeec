import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { TestNatsServer } from "../../test/helpers/nats-server.js";
import { ChatSession } from "../../src/cli/chat-session.js";
import { createLogger, type Logger } from "../../src/core/logging.js";
import { sleep } from "../../src/core/sleep.js";
import { Subjects } from "../../src/core/subjects.js";
import { HostClient } from "../../src/host/client.js";
import type { ServerTraffic } from "./load.js";
import { ProcessGroup, type Child } from "./processes.js";
import { FIRST_MESSAGE } from "./switchboard-users.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const CLI = join(REPO_ROOT, "bin/switchboard.js");
const BUILT_MAIN = join(REPO_ROOT, "dist/cli/main.js");
const RELAY = join(REPO_ROOT, "scripts/bench/relay.ts");
const HEAP_PROBE = join(REPO_ROOT, "scripts/bench/heap-probe.mjs");

export class NotBuiltError extends Error {
  override name = "NotBuiltError";
}

/** The processes run the compiled CLI, as deployed; refuse to measure without it. */
export function checkBuilt(): void {
  if (!existsSync(BUILT_MAIN)) throw new NotBuiltError(`dist/ is missing (${BUILT_MAIN} not found): run \`npm run build\` first; the benchmark runs the compiled CLI (bin/switchboard.js) as separate processes`);
}

/** Newest .ts under src/ is newer than the build: the numbers would be for old code. */
export function buildLooksStale(): boolean {
  const builtAt = statSync(BUILT_MAIN).mtimeMs;
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : e.name.endsWith(".ts") ? statSync(p).mtimeMs : 0);
    }, 0);
  return newest(join(REPO_ROOT, "src")) > builtAt;
}

export interface BuildFingerprint {
  /** sha256 over every file in dist/, so "before" and "after" runs name the code they measured. */
  readonly distSha256: string;
  readonly newestDistFile: string;
}

/** Identifies the compiled code the processes run. */
export function buildFingerprint(): BuildFingerprint {
  const hash = createHash("sha256");
  let newest = 0;
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        hash.update(p.slice(REPO_ROOT.length)).update(readFileSync(p));
        newest = Math.max(newest, statSync(p).mtimeMs);
      }
    }
  };
  walk(join(REPO_ROOT, "dist"));
  return { distSha256: hash.digest("hex").slice(0, 16), newestDistFile: new Date(newest).toISOString() };
}

export interface EnvironmentOptions {
  readonly logLevel: string;
  /** Where `--cpu-prof` writes host and worker profiles; undefined = no profiling. */
  readonly profileDir: string | undefined;
  /** Extra environment of the worker processes (agent delay, concurrency). */
  readonly workerEnv?: Readonly<Record<string, string>>;
}

/**
 * One benchmark setup: a nats-server, the processes under test and the bench's own control
 * connection. `close()` stops all of it; `killNow()` is for a synchronous exit path.
 */
export class BenchEnvironment {
  readonly subjects = new Subjects("sb");
  readonly logger: Logger = createLogger("bench", { level: "silent", pretty: false });
  readonly group = new ProcessGroup();
  private workerSeq = 0;

  private constructor(
    readonly dir: string,
    readonly server: TestNatsServer,
    readonly natsPid: number,
    readonly nc: NatsConnection,
    private readonly options: EnvironmentOptions,
  ) {}

  static async start(options: EnvironmentOptions): Promise<BenchEnvironment> {
    const dir = await mkdtemp(join(tmpdir(), "sb-bench-"));
    await mkdir(join(dir, "nats"));
    const server = await TestNatsServer.start({ dir: join(dir, "nats") }).catch(async (err: unknown) => {
      await rm(dir, { recursive: true, force: true });
      throw err;
    });
    const nc = await server.connect("bench-control");
    if (options.profileDir) await mkdir(options.profileDir, { recursive: true });
    await mkdir(join(dir, "logs"), { recursive: true });
    return new BenchEnvironment(dir, server, natsPidOf(server.dir), nc, options);
  }

  get url(): string {
    return this.server.url;
  }

  /** The server's cumulative client traffic, from its monitoring endpoint. */
  async serverTraffic(): Promise<ServerTraffic> {
    const res = await fetch(`${await this.server.monitoringUrl()}/varz`, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`nats-server monitoring answered ${res.status} for /varz`);
    const v = (await res.json()) as { in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number };
    return { inMsgs: v.in_msgs, outMsgs: v.out_msgs, inBytes: v.in_bytes, outBytes: v.out_bytes };
  }

  private env(): Record<string, string> {
    return { NATS_URL: this.url, LOG_LEVEL: this.options.logLevel };
  }

  startHost(): Promise<Child> {
    const prof = this.options.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${this.options.profileDir}`, `--cpu-prof-name=host-${Date.now()}.cpuprofile`] : [];
    return this.group.spawn({ name: "host", args: [...prof, CLI, "host"], env: this.env(), logFile: join(this.dir, "logs", "host.log") });
  }

  startWorker(profile = false): Promise<Child> {
    const id = `bench-w${++this.workerSeq}`;
    const prof = profile && this.options.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${this.options.profileDir}`, `--cpu-prof-name=worker-${id}-${Date.now()}.cpuprofile`] : [];
    // The heap probe only listens for SIGUSR2; it costs nothing until the memory measurement asks.
    const probe = ["--expose-gc", "--import", pathToFileURL(HEAP_PROBE).href];
    return this.group.spawn({
      name: id,
      args: [...prof, ...probe, CLI, "worker", "--id", id],
      env: { ...this.env(), ...this.options.workerEnv, SB_BENCH_HEAP_FILE: this.heapFile(id) },
      logFile: join(this.dir, "logs", `${id}.log`),
    });
  }

  /** Where the heap probe of worker `name` writes its figures. */
  heapFile(name: string): string {
    return join(this.dir, `${name}.heap.json`);
  }

  startRelay(index: number): Promise<Child> {
    // tsx's loader by absolute URL, so the relay runs wherever the benchmark was started from.
    const tsx = import.meta.resolve("tsx");
    return this.group.spawn({ name: `relay${index}`, args: ["--import", tsx, RELAY], env: { NATS_URL: this.url }, logFile: join(this.dir, "logs", `relay${index}.log`), readyLine: "ready" });
  }

  /** Waits until the host lists every given worker as registered. */
  async waitForWorkers(ids: readonly string[], timeoutMs = 30_000): Promise<void> {
    const host = new HostClient(this.nc, this.subjects);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const live = new Set((await host.workers({ timeoutMs: 2_000 })).map((w) => w.workerId));
        if (ids.every((id) => live.has(id))) return;
      } catch {
        // host not answering yet
      }
      if (Date.now() > deadline) throw new Error(`workers ${ids.join(", ")} did not register within ${timeoutMs / 1000} s; see the logs in ${join(this.dir, "logs")}`);
      await sleep(200);
    }
  }

  /** Waits until a first message is routed and answered end to end (the router has seen the agents). */
  async waitForRouting(timeoutMs = 60_000): Promise<void> {
    const chat = new ChatSession({ nc: this.nc, subjects: this.subjects, user: "benchprobe", logger: this.logger, replyTimeoutMs: 5_000 });
    await chat.start();
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const events = await chat.send(FIRST_MESSAGE);
        if (events[events.length - 1]?.event === "reply") return;
        chat.newSession();
        if (Date.now() > deadline) throw new Error(`the system did not answer a first message within ${timeoutMs / 1000} s (last: ${JSON.stringify(events[events.length - 1])}); see ${join(this.dir, "logs")}`);
        await sleep(300);
      }
    } finally {
      await chat.close();
    }
  }

  async close(): Promise<void> {
    await this.group.stopAll();
    await this.nc.close().catch(() => undefined);
    await this.server.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  killNow(): void {
    this.group.killAllNow();
    try {
      process.kill(this.natsPid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function natsPidOf(dir: string): number {
  const ports = readdirSync(dir).find((f) => /^nats-server_\d+\.ports$/.test(f));
  const pid = ports ? Number(/_(\d+)\./.exec(ports)?.[1]) : Number.NaN;
  if (!Number.isInteger(pid)) throw new Error(`cannot tell the nats-server pid from ${dir}`);
  return pid;
}
