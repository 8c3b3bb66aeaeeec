/**
 * `npm run bench:tracing`: what tracing costs. Runs the same load against a host and a worker
 * started without OpenTelemetry and with it (every span exported over OTLP/HTTP to a collector
 * stand-in in this process), in alternating rounds, and reports the on/off ratios of one run.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BenchEnvironment, checkBuilt, REPO_ROOT } from "./bench/environment.js";
import { ClientConnections } from "./bench/connections.js";
import { runLoad, type RunResult } from "./bench/load.js";
import { SwitchboardUsers } from "./bench/switchboard-users.js";
import type { Child } from "./bench/processes.js";
import { create } from "@bufbuild/protobuf";
import { encodeEvent } from "../src/core/codec.js";
import { observeDelivery } from "../src/core/telemetry/delivery.js";
import { WorkerMetrics } from "../src/core/telemetry/metrics.js";
import { UserMessageSchema } from "../src/gen/switchboard/v1/conversation_pb.js";

const log = (line: string) => process.stderr.write(`${line}\n`);
const CLI = join(REPO_ROOT, "bin/switchboard.js");

const HELP = `Usage: npm run bench:tracing -- [--users N] [--duration S] [--rounds R]

Starts a nats-server, then for each round a host and a worker with all built-in agents, first
without OpenTelemetry, then with OTEL_EXPORTER_OTLP_ENDPOINT set (every turn sampled, spans and
metrics exported over OTLP/HTTP to a collector stand-in that counts and discards them), and drives
--users simulated users through whole sessions for --duration seconds each time. Prints turns per
second, latency and worker CPU per turn for both, and the on/off ratios (median over rounds).

Options:
  --users <n>       simulated users at once (default 10)
  --duration <s>    seconds per measurement (default 8)
  --rounds <n>      off/on pairs (default 2)`;

interface Collector {
  readonly endpoint: string;
  readonly requests: () => number;
  readonly bytes: () => number;
  close(): Promise<void>;
}

/** Accepts OTLP/HTTP exports and throws them away, counting what arrived. */
async function startCollector(): Promise<Collector> {
  let requests = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on("data", (c: Buffer) => (bytes += c.length));
    req.on("end", () => {
      requests++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    bytes: () => bytes,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * What the hooks on the message path cost with tracing off, per message, measured in this process:
 * a handler run through observeDelivery (counters, histogram bucket, the tracing switch) against
 * the bare handler, and encodeEvent (which asks whether to add trace headers) on its own.
 */
async function hookCostNs(): Promise<{ deliveryNs: number; encodeUs: number }> {
  const meter = new WorkerMetrics("bench").agentType("finance");
  const delivery = { headers: undefined, agentType: "finance", topicType: "finance", session: "s1", turn: "t1", eventId: "e1", eventType: "switchboard.v1.UserMessage", subject: "sb.topic.finance.u.s1", deliveryCount: 1, consumer: "finance__finance", pending: 0 };
  const handler = async () => undefined;
  const n = 200_000;
  const time = async (f: () => Promise<unknown>) => {
    for (let i = 0; i < 10_000; i++) await f();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await f();
    return Number(process.hrtime.bigint() - t0) / n;
  };
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) samples.push((await time(() => observeDelivery(meter, delivery, handler))) - (await time(handler)));
  const message = create(UserMessageSchema, { sessionId: "s1", user: "u", turnId: "t1", text: "I need help with my budget" });
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 50_000; i++) encodeEvent(UserMessageSchema, message, { source: "bench", id: "e1" });
  return { deliveryNs: median(samples), encodeUs: Number(process.hrtime.bigint() - t0) / 50_000 / 1000 };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { users: { type: "string", default: "10" }, duration: { type: "string", default: "8" }, rounds: { type: "string", default: "2" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const users = Number(values.users);
  const durationS = Number(values.duration);
  const rounds = Number(values.rounds);
  checkBuilt();
  const hooks = await hookCostNs();
  log(`hooks with tracing off: ${hooks.deliveryNs.toFixed(0)} ns per delivery over a bare handler; encodeEvent ${hooks.encodeUs.toFixed(2)} us per event`);
  const env = await BenchEnvironment.start({ logLevel: "warn", profileDir: undefined });
  const collector = await startCollector();
  const results: { mode: "off" | "on"; round: number; run: RunResult; exports: number; exportBytes: number }[] = [];
  let seq = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const mode of ["off", "on"] as const) {
        const otel: Record<string, string> = mode === "on" ? { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_TRACES_SAMPLER: "always_on", OTEL_METRIC_EXPORT_INTERVAL: "5000" } : {};
        const base = { NATS_URL: env.url, LOG_LEVEL: "warn", ...otel };
        const id = `trace-${mode}-${++seq}`;
        const host: Child = await env.group.spawn({ name: "host", args: [CLI, "host"], env: base, logFile: join(env.dir, "logs", `host-${id}.log`) });
        const worker: Child = await env.group.spawn({ name: id, args: [CLI, "worker", "--id", id], env: base, logFile: join(env.dir, "logs", `${id}.log`) });
        await env.waitForWorkers([id]);
        await env.waitForRouting();
        const before = { requests: collector.requests(), bytes: collector.bytes() };
        log(`round ${round}, tracing ${mode}: ${users} users, ${durationS} s`);
        const connections = new ClientConnections(env.url, false);
        try {
          const run = await runLoad(new SwitchboardUsers(connections, env.subjects, env.logger, `r${seq}`, 10_000), {
            system: `tracing-${mode}`,
            concurrency: users,
            durationMs: durationS * 1000,
            followups: 3,
            accounted: [
              { name: "worker", pid: worker.pid },
              { name: "host", pid: host.pid },
            ],
            quiet: true,
          });
          log(`  -> ${run.turnsPerS} turns/s, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, worker ${run.cpuMsPerTurn["worker"]} CPU ms/turn, errors ${run.errors}, lost ${run.lost}`);
          // The exporters flush on the way out; count what they sent once they are gone.
          await env.group.stop(worker, 30_000);
          await env.group.stop(host, 30_000);
          results.push({ mode, round, run, exports: collector.requests() - before.requests, exportBytes: collector.bytes() - before.bytes });
        } finally {
          await connections.closeAll();
        }
      }
    }
  } finally {
    await collector.close();
    await env.close();
  }
  const ratios = (f: (r: RunResult) => number) =>
    median(
      Array.from({ length: rounds }, (_, i) => {
        const off = results.find((r) => r.mode === "off" && r.round === i + 1)?.run;
        const on = results.find((r) => r.mode === "on" && r.round === i + 1)?.run;
        return off && on && f(off) > 0 ? f(on) / f(off) : Number.NaN;
      }),
    );
  const lines = [
    "",
    "| round | tracing | turns/s | p50 ms | p99 ms | worker CPU ms/turn | host CPU ms/turn | errors + lost | OTLP exports (KiB) |",
    "|---|---|---|---|---|---|---|---|---|",
    ...results.map(
      (r) =>
        `| ${r.round} | ${r.mode} | ${r.run.turnsPerS} | ${r.run.latencyMs.p50} | ${r.run.latencyMs.p99} | ${r.run.cpuMsPerTurn["worker"]} | ${r.run.cpuMsPerTurn["host"]} | ${r.run.errors + r.run.lost} | ${r.exports} (${Math.round(r.exportBytes / 1024)}) |`,
    ),
    "",
    `with tracing off, the hooks add ${hooks.deliveryNs.toFixed(0)} ns per delivery (metrics included); encoding an event takes ${hooks.encodeUs.toFixed(2)} us in all`,
    `on/off, median over ${rounds} round(s): turns/s ${ratios((r) => r.turnsPerS).toFixed(2)}, p50 ${ratios((r) => r.latencyMs.p50).toFixed(2)}, p99 ${ratios((r) => r.latencyMs.p99).toFixed(2)}, worker CPU per turn ${ratios((r) => r.cpuMsPerTurn["worker"] ?? 0).toFixed(2)}`,
  ];
  console.log(lines.join("\n"));
  return 0;
}

process.exit(await main());
