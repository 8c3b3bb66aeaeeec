/**
 * `npm run bench`: Switchboard against the limit of the bus it runs on. See `--help` and
 * docs/PERFORMANCE.md.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { sleep } from "../src/core/sleep.js";
import { natsServerBinary } from "../test/helpers/nats-server.js";
import { createRelayStream, RelayUsers } from "./bench/baseline.js";
import { measureCatchUp, type CatchUpResult } from "./bench/catchup.js";
import { ClientConnections } from "./bench/connections.js";
import { BenchEnvironment, buildFingerprint, buildLooksStale, checkBuilt, NotBuiltError, type BuildFingerprint } from "./bench/environment.js";
import { HOP_MAPPING } from "./bench/hops.js";
import { runLoad, type Accounted, type RunResult, type UserFactory } from "./bench/load.js";
import { measureIdleSessionMemory, type MemoryResult } from "./bench/memory.js";
import { HELP, parseOptions, UsageError, type BenchOptions, type SystemName } from "./bench/options.js";
import type { Child } from "./bench/processes.js";
import { checkTargets, compare, formatTable, representativeRuns, type RoundRun } from "./bench/report.js";
import { measureRouting, type RoutingResult } from "./bench/routing.js";
import { latencyChart } from "./bench/svg.js";
import { SwitchboardUsers } from "./bench/switchboard-users.js";
import { formatTraffic, measureTraffic, type TrafficBreakdown } from "./bench/traffic.js";
import { formatSummary, loadProfile, summarizeProfiles, type ProfileSummary } from "./profile-summary.js";

const log = (line: string) => process.stderr.write(`${line}\n`);

interface Results {
  readonly startedAt: string;
  readonly machine: Record<string, string | number>;
  readonly options: BenchOptions;
  readonly hops: typeof HOP_MAPPING;
  readonly build: BuildFingerprint;
  /** Set when dist/ changed while the benchmark ran: its figures mix two builds. */
  buildChangedDuringRun?: BuildFingerprint;
  runs: RoundRun[];
  memory?: MemoryResult;
  catchUp?: CatchUpResult;
  routing?: RoutingResult[];
  traffic?: TrafficBreakdown[];
  profile?: ProfileSummary;
}

function machine(): Record<string, string | number> {
  let nats = "unknown";
  try {
    nats = execFileSync(natsServerBinary(), ["--version"], { encoding: "utf8" }).trim();
  } catch {
    // reported as unknown
  }
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", memoryBytes: totalmem(), node: process.version, natsServer: nats, platform: process.platform };
}

class Bench {
  private env: BenchEnvironment | undefined;
  private host: Child | undefined;
  private workers: Child[] = [];
  private relays: Child[] = [];
  private runSeq = 0;
  readonly results: Results;
  private readonly outDir: string;

  constructor(private readonly opts: BenchOptions) {
    this.outDir = dirname(resolve(opts.out));
    this.results = { startedAt: new Date().toISOString(), machine: machine(), options: opts, hops: HOP_MAPPING, build: buildFingerprint(), runs: [] };
  }

  private get e(): BenchEnvironment {
    if (!this.env) throw new Error("environment not started");
    return this.env;
  }

  /** Synchronous last resort for the process `exit` event. */
  killNow(): void {
    this.env?.killNow();
  }

  async close(keepLogs = false): Promise<void> {
    const env = this.env;
    this.env = undefined;
    if (env && keepLogs) {
      const dest = join(this.outDir, `logs-${Date.now()}`);
      cpSync(join(env.dir, "logs"), dest, { recursive: true });
      log(`bench: process logs kept in ${dest}`);
    }
    await env?.close();
  }

  async run(): Promise<void> {
    const o = this.opts;
    mkdirSync(this.outDir, { recursive: true });
    const profileDir = o.profile ? join(this.outDir, "profiles") : undefined;
    log(`starting nats-server, host, ${o.workers} worker(s)${o.systems.some((s) => s !== "switchboard") ? ` and ${o.workers} relay process(es)` : ""}`);
    const workerEnv: Record<string, string> = { SB_AGENT_DELAY_MS: String(o.agentDelayMs), ...(o.workerConcurrency ? { SB_CONCURRENCY: String(o.workerConcurrency) } : {}) };
    this.env = await BenchEnvironment.start({ logLevel: o.logLevel, profileDir, workerEnv });
    await this.startSystems();
    // Memory first, on the workers as freshly started: replacing a worker later would measure a
    // restart as well, and their load-phase sessions would blur the baseline.
    if (o.idleSessions > 0) await this.memoryPhase();
    await this.loadPhases();
    if (o.trafficSessions > 0) await this.trafficPhase();
    if (o.backlog > 0) await this.catchUpPhase();
    await this.stopLoadWorkers();
    if (profileDir) this.summarizeProfiles(profileDir);
    if (o.routingRequests > 0) {
      log(`routing time: ${o.routingRequests} classifications per classifier`);
      this.results.routing = await measureRouting(o.routingRequests);
    }
    const after = buildFingerprint();
    if (after.distSha256 !== this.results.build.distSha256) {
      this.results.buildChangedDuringRun = after;
      log("bench: warning: dist/ was rebuilt during the run; processes started before and after the rebuild ran different code");
    }
    this.write();
    this.print();
  }

  private async startSystems(): Promise<void> {
    const o = this.opts;
    const env = this.e;
    this.host = await env.startHost();
    for (let i = 0; i < o.workers; i++) this.workers.push(await env.startWorker(o.profile));
    if (o.systems.includes("durable") || o.systems.includes("core")) {
      await createRelayStream(env.nc);
      for (let i = 0; i < o.workers; i++) this.relays.push(await env.startRelay(i + 1));
    }
    await env.waitForWorkers(this.workers.map((w) => w.name));
    await env.waitForRouting();
    log(`ready: nats-server ${env.url} (pid ${env.natsPid}), host pid ${this.host.pid}, workers ${this.workers.map((w) => w.pid).join(",")}${this.relays.length ? `, relays ${this.relays.map((r) => r.pid).join(",")}` : ""}`);
  }

  private factory(system: SystemName, connections: ClientConnections, tag: string): UserFactory {
    const env = this.e;
    if (system === "switchboard") return new SwitchboardUsers(connections, env.subjects, env.logger, tag, this.opts.timeoutMs);
    return new RelayUsers(system, connections, tag, this.opts.timeoutMs);
  }

  private accounted(system: SystemName): Accounted[] {
    const nats = { name: "nats-server", pid: this.e.natsPid };
    if (system === "switchboard") return [nats, ...(this.host ? [{ name: "host", pid: this.host.pid }] : []), ...this.workers.map((w) => ({ name: w.name, pid: w.pid }))];
    return [nats, ...this.relays.map((r) => ({ name: r.name, pid: r.pid }))];
  }

  private async once(system: SystemName, concurrency: number, measured: { durationMs?: number; sessions?: number }, quiet: boolean, thinkMs = 0): Promise<RunResult> {
    const connections = new ClientConnections(this.e.url, this.opts.sharedConnection);
    try {
      return await runLoad(this.factory(system, connections, `r${++this.runSeq}`), { system, concurrency, ...measured, followups: this.opts.followups, thinkMs, accounted: this.accounted(system), quiet, serverTraffic: () => this.e.serverTraffic() });
    } finally {
      await connections.closeAll();
    }
  }

  private async loadPhases(): Promise<void> {
    const o = this.opts;
    const top = o.concurrency[o.concurrency.length - 1] ?? 1;
    if (o.warmupS > 0) {
      for (const system of o.systems) {
        log(`warm-up: ${system}, ${o.warmupS} s at ${top} users`);
        await this.once(system, top, { durationMs: o.warmupS * 1000 }, true);
      }
    }
    for (const c of o.concurrency) {
      for (let round = 1; round <= o.rounds; round++) {
        for (const system of o.systems) {
          const what = o.sessions !== undefined ? `${o.sessions} sessions` : `${o.durationS} s`;
          log(`${system}: ${c} user(s), ${what}${o.rounds > 1 ? `, round ${round}/${o.rounds}` : ""}`);
          const r = await this.once(system, c, o.sessions !== undefined ? { sessions: o.sessions } : { durationMs: o.durationS * 1000 }, false, o.thinkMs);
          log(`  -> ${r.turnsPerS} turns/s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, errors ${r.errors}, lost ${r.lost}`);
          this.results.runs.push({ ...r, round });
          // Partial results survive an interrupted run.
          this.write();
        }
      }
    }
  }

  private async trafficPhase(): Promise<void> {
    const tap = await this.e.server.connect("bench-tap");
    this.results.traffic = [];
    try {
      for (const system of this.opts.systems) {
        log(`wire traffic: ${system}, ${this.opts.trafficSessions} sessions at 10 users under a wiretap`);
        const connections = new ClientConnections(this.e.url, this.opts.sharedConnection);
        try {
          this.results.traffic.push(await measureTraffic(tap, system, this.factory(system, connections, `t${++this.runSeq}`), { sessions: this.opts.trafficSessions, concurrency: 10, followups: this.opts.followups }));
        } finally {
          await connections.closeAll();
        }
        // The host applies what it read in rounds; let it finish before the next system is tapped.
        await sleep(1_000);
      }
    } finally {
      await tap.close();
    }
    this.write();
  }

  private async stopLoadWorkers(): Promise<void> {
    // Graceful stop: that is also when `--cpu-prof` writes the workers' profiles.
    await Promise.all(this.workers.map((w) => this.e.group.stop(w, 30_000)));
    await Promise.all(this.relays.map((r) => this.e.group.stop(r)));
    this.workers = [];
    this.relays = [];
  }

  private summarizeProfiles(dir: string): void {
    const files = readdirSync(dir).filter((f) => f.startsWith("worker-") && f.endsWith(".cpuprofile"));
    if (files.length === 0) {
      log(`no worker profile was written to ${dir}`);
      return;
    }
    this.results.profile = summarizeProfiles(files.map((f) => loadProfile(join(dir, f))));
    log(`worker CPU profile(s): ${files.map((f) => join(dir, f)).join(", ")}`);
  }

  private async memoryPhase(): Promise<void> {
    log(`worker memory: opening ${this.opts.idleSessions} sessions on the freshly started worker(s) (pids ${this.workers.map((w) => w.pid).join(",")})`);
    const connections = new ClientConnections(this.e.url, this.opts.sharedConnection);
    try {
      this.results.memory = await measureIdleSessionMemory(this.e, this.workers, connections, this.opts.idleSessions, this.opts.timeoutMs);
    } finally {
      await connections.closeAll();
    }
    this.write();
  }

  private async catchUpPhase(): Promise<void> {
    if (!this.host) return;
    log(`host catch-up: backlog of ${this.opts.backlog} events`);
    const connections = new ClientConnections(this.e.url, this.opts.sharedConnection);
    try {
      const { result, host } = await measureCatchUp(this.e, this.host, connections, this.opts.backlog, this.opts.followups, this.opts.timeoutMs);
      this.host = host;
      this.results.catchUp = result;
    } finally {
      await connections.closeAll();
    }
    this.write();
  }

  private write(): void {
    const r = this.results;
    const out = { ...r, comparisons: compare(r.runs), targets: checkTargets(r.runs, r.memory?.bytesPerSession, this.opts.thinkMs === 0) };
    writeFileSync(resolve(this.opts.out), JSON.stringify(out, null, 2) + "\n");
    if (r.runs.length > 0) writeFileSync(join(this.outDir, "latency-vs-load.svg"), latencyChart(representativeRuns(r.runs), `Turn latency vs load (${this.opts.workers} worker${this.opts.workers > 1 ? "s" : ""}, ${r.machine["cpus"]} CPUs)`));
  }

  private print(): void {
    const r = this.results;
    const lines: string[] = ["", `build: dist sha256 ${r.build.distSha256} (newest file ${r.build.newestDistFile})${r.buildChangedDuringRun ? ", REBUILT DURING THE RUN" : ""}`, "", formatTable(r.runs, this.opts.systems)];
    if (r.memory) {
      const m = r.memory;
      const mib = (b: number) => (b / 2 ** 20).toFixed(1);
      lines.push(`worker memory: ${m.opened} idle sessions (${m.failed} failed to open): heap after GC ${mib(m.heapBeforeBytes)} MiB -> ${mib(m.heapAfterBytes)} MiB = ${m.bytesPerSession} bytes per session; RSS ${mib(m.rssBeforeBytes)} MiB -> ${mib(m.rssAfterBytes)} MiB = ${m.rssBytesPerSession} bytes per session`);
    }
    if (r.catchUp) {
      const c = r.catchUp;
      lines.push(`host catch-up: ${c.backlogEvents} events in ${c.applyS} s = ${c.eventsPerS} events/s (${c.totalS} s including host start)`);
    }
    if (r.traffic?.length) lines.push("", formatTraffic(r.traffic), "");
    for (const x of r.routing ?? []) lines.push(`routing (${x.classifier}): setup ${x.setupMs} ms; classify p50 ${x.classifyUs.p50} us, p99 ${x.classifyUs.p99} us, mean ${x.classifyUs.mean} us`);
    if (r.profile) lines.push("", "worker CPU profile:", formatSummary({ ...r.profile, selfTop: r.profile.selfTop.slice(0, 15), inclusiveTop: r.profile.inclusiveTop.slice(0, 15) }));
    if (this.opts.agentDelayMs > 0) lines.push("", ...idealLines(r.runs, this.opts.agentDelayMs, this.opts.workers));
    const targets = this.opts.agentDelayMs > 0 ? [] : checkTargets(r.runs, r.memory?.bytesPerSession, this.opts.thinkMs === 0);
    if (targets.length) lines.push("", "targets:", ...targets.map((t) => `  [${t.met ? "met" : "NOT met"}] ${t.target}: ${t.measured}`));
    if (this.opts.thinkMs > 0) lines.push("  (throughput and latency targets are defined for users without pauses, --think-ms 0; not checked)");
    lines.push("", `results: ${resolve(this.opts.out)}`, `chart:   ${join(this.outDir, "latency-vs-load.svg")}`);
    console.log(lines.join("\n"));
  }
}

/**
 * With agents that take `delayMs` per reply, a closed-loop user can send at most one message per
 * delay: users / delay is the most any number of workers could carry.
 */
function idealLines(runs: readonly RoundRun[], delayMs: number, workers: number): string[] {
  const lines = [`agent delay ${delayMs} ms, ${workers} worker(s): measured turns/s against the ideal (users / delay)`];
  for (const r of runs.filter((x) => x.system === "switchboard")) {
    const ideal = r.concurrency / (delayMs / 1000);
    lines.push(`  ${String(r.concurrency).padStart(5)} users: ${r.turnsPerS.toFixed(1).padStart(7)} turns/s of ideal ${ideal.toFixed(1).padStart(6)} = ${(r.turnsPerS / ideal).toFixed(2)}x; p50 ${Math.round(r.latencyMs.p50)} ms, p99 ${Math.round(r.latencyMs.p99)} ms`);
  }
  return lines;
}

async function main(): Promise<number> {
  let opts: BenchOptions | undefined;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      log(`bench: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (!opts) {
    console.log(HELP);
    return 0;
  }
  try {
    checkBuilt();
  } catch (err) {
    if (err instanceof NotBuiltError) {
      log(`bench: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (buildLooksStale()) log("bench: warning: src/ has changed since the last `npm run build`; the processes run the compiled code in dist/");
  const bench = new Bench(opts);
  process.on("exit", () => bench.killNow());
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) {
      bench.killNow();
      process.exit(130);
    }
    interrupted = true;
    log(`bench: ${signal}: stopping everything it started (again to kill at once)`);
    void bench.close().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let failed = false;
  try {
    await bench.run();
    return 0;
  } catch (err) {
    if (interrupted) return 130;
    failed = true;
    log(`bench: failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  } finally {
    if (!interrupted) await bench.close(failed);
  }
}

process.exit(await main());
