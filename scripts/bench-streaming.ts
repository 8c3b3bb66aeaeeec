/**
 * How long a streamed token takes from the model to the chat: a local OpenAI-compatible model
 * stub streams each answer; a real host, a worker running an agents-file agent on that stub, and
 * `switchboard chat --json --stream` run as separate processes on a real nats-server. For each
 * turn, the time from the stub writing the answer's first token to the chat's delta line for it
 * being read from the chat's stdout, both taken on this process's clock. Needs `npm run build`.
 *
 *   npm run bench:streaming -- [--turns 300] [--warmup 20] [--chunks 8] [--chunk-gap-ms 5] [--json FILE]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { runCli, type CliProcess } from "../test/helpers/cli.js";
import { ModelStub } from "../test/helpers/model-stub.js";
import { TestNatsServer } from "../test/helpers/nats-server.js";

const { values } = parseArgs({
  options: {
    turns: { type: "string", default: "300" },
    warmup: { type: "string", default: "20" },
    chunks: { type: "string", default: "8" },
    "chunk-gap-ms": { type: "string", default: "5" },
    json: { type: "string" },
  },
});
const turns = Number(values.turns);
const warmup = Number(values.warmup);
const chunkCount = Number(values.chunks);
const chunkGapMs = Number(values["chunk-gap-ms"]);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const server = await TestNatsServer.start();
  const stub = await ModelStub.start();
  const env = { NATS_URL: server.url, LOG_LEVEL: "warn" };
  const processes: CliProcess[] = [];
  try {
    const file = join(mkdtempSync(join(tmpdir(), "sb-bench-stream-")), "agents.json");
    writeFileSync(file, JSON.stringify({ agents: [{ type: "bench", description: "Benchmark desk for streamed answers", keywords: ["bench"], examples: ["bench turn"], model: { url: stub.url, model: "stub", systemPrompt: "Answer briefly.", historyMessages: 4 } }] }));
    const host = runCli(["host", "--log-level", "info"], env);
    processes.push(host);
    await host.waitFor((p) => p.stderr.includes('"event":"host.started"'), 20_000, "host start");
    const worker = runCli(["worker", "--agents", "router,user_proxy,bench", "--agents-file", file, "--log-level", "info"], env);
    processes.push(worker);
    await worker.waitFor((p) => p.stderr.includes('"event":"worker.started"'), 20_000, "worker start");

    // First-token write times, by request index; the stub answers one turn per request.
    const firstTokenAt: number[] = [];
    stub.onChunk = (request, chunk) => {
      if (chunk === 0) firstTokenAt[request] = performance.now();
    };
    stub.answer = () => ({ kind: "stream", chunks: Array.from({ length: chunkCount }, (_, i) => `token${i} `), delayMs: chunkGapMs });

    const chat = spawn(process.execPath, ["bin/switchboard.js", "chat", "--user", "bench", "--json", "--stream"], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "inherit"] });
    const waiting: ((line: { event: string; at: number }) => void)[] = [];
    let firstDeltaAt: number | undefined;
    createInterface({ input: chat.stdout }).on("line", (line) => {
      const at = performance.now();
      const event = (JSON.parse(line) as { event: string }).event;
      if (event === "delta" && firstDeltaAt === undefined) firstDeltaAt = at;
      for (const w of waiting.splice(0)) w({ event, at });
    });
    const untilFinal = () =>
      new Promise<string>((resolve) => {
        const check = (line: { event: string }) => {
          if (["reply", "error", "timeout", "ended", "no_agent", "clarify"].includes(line.event)) resolve(line.event);
          else waiting.push(check);
        };
        waiting.push(check);
      });

    const latencies: number[] = [];
    let failures = 0;
    const started = performance.now();
    for (let i = 0; i < warmup + turns; i++) {
      firstDeltaAt = undefined;
      const before = stub.requests.length;
      const final = untilFinal();
      chat.stdin.write(`bench turn ${i}\n`);
      const outcome = await final;
      const sentAt = firstTokenAt[before];
      if (outcome !== "reply" || sentAt === undefined || firstDeltaAt === undefined) {
        failures++;
        continue;
      }
      if (i >= warmup) latencies.push(firstDeltaAt - sentAt);
    }
    const seconds = (performance.now() - started) / 1000;
    chat.stdin.end();
    await new Promise((resolve) => chat.once("exit", resolve));

    const sorted = [...latencies].sort((a, b) => a - b);
    const result = {
      turns: latencies.length,
      failures,
      chunksPerAnswer: chunkCount,
      chunkGapMs,
      firstTokenToChatMs: { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN, min: sorted[0] ?? Number.NaN },
      turnsPerSecond: (warmup + turns) / seconds,
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.version },
    };
    const ms = (v: number) => `${v.toFixed(2)} ms`;
    const l = result.firstTokenToChatMs;
    console.log(`first streamed token -> chat stdout, ${result.turns} turns (${failures} failed), ${chunkCount} chunks ${chunkGapMs} ms apart`);
    console.log(`  p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  min ${ms(l.min)}  max ${ms(l.max)}`);
    console.log(`  target p50 < 5 ms: ${l.p50 < 5 ? "met" : "NOT met"}`);
    if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`);
    if (failures > 0 || !(l.p50 < 5)) process.exitCode = 1;
  } finally {
    for (const p of processes.reverse()) await p.stop("SIGTERM");
    await stub.close();
    await server.stop();
  }
}

await main();
