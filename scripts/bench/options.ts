import { parseArgs } from "node:util";

export const SYSTEMS = ["switchboard", "durable", "core"] as const;
export type SystemName = (typeof SYSTEMS)[number];

export interface BenchOptions {
  readonly workers: number;
  readonly concurrency: readonly number[];
  /** Seconds per (system, concurrency) run; ignored when `sessions` is set. */
  readonly durationS: number;
  /** Whole sessions per (system, concurrency) run, instead of a duration. */
  readonly sessions: number | undefined;
  readonly followups: number;
  readonly timeoutMs: number;
  readonly warmupS: number;
  /** Mean pause of each simulated user between an answer and its next message; 0: none. */
  readonly thinkMs: number;
  /** Times the systems take turns at each level; ratios are paired per round. */
  readonly rounds: number;
  readonly systems: readonly SystemName[];
  readonly sharedConnection: boolean;
  readonly idleSessions: number;
  readonly backlog: number;
  readonly routingRequests: number;
  /** Sessions per system run under a wiretap for the traffic breakdown (0: none). */
  readonly trafficSessions: number;
  readonly profile: boolean;
  readonly logLevel: string;
  readonly out: string;
  /** Simulated work per message in the workers' task agents (SB_AGENT_DELAY_MS); 0: none. */
  readonly agentDelayMs: number;
  /** Messages each worker handles at once per agent type (SB_CONCURRENCY); undefined: its default. */
  readonly workerConcurrency: number | undefined;
}

export const HELP = `Usage: npm run bench -- [options]      (or: npx tsx scripts/bench.ts [options])

Measures Switchboard against the limit of the bus it runs on. Starts its own nats-server
(temporary store, free port), one host and --workers worker processes (node bin/switchboard.js,
so run \`npm run build\` first), plus relay processes for the baselines, and then, for every
concurrency level, drives simulated users through whole sessions (a first message routed by
keyword, --followups follow-ups, then END) against:

  switchboard  the real system: ChatSession -> router -> agent -> user proxy -> client
  durable      bare relays with the same hops and durability: JetStream publish with ack,
               explicit-ack durable pull consumers, relays that only forward
  core         the same relay chain over core NATS pub/sub (at most once), for reference

A turn is one user message, timed from send until its final event (reply / ended / error /
timeout). Before the load it measures the heap (after a full GC) and RSS of the fresh workers holding
--idle-sessions open sessions; after it, the host's catch-up speed over a backlog of --backlog
events, the wire traffic per turn of each system (--traffic-sessions), and the routing time per
request of the classifiers that can be imported. Prints a table, writes JSON (--out) and an SVG
chart of latency vs load next to it.

Options:
  --workers <n>           worker processes, each with all built-in agents; also the number of
                          relay processes for the baselines (default 1)
  --concurrency <list>    simulated users at once, comma-separated (default 1,10,50)
  --duration <s>          seconds per system and concurrency level (default 10)
  --sessions <n>          run this many whole sessions per system and level instead of --duration
  --followups <k>         follow-up messages per session before END (default 3)
  --timeout <ms>          a turn without its final event after this long is lost (default 10000)
  --warmup <s>            unmeasured load per system before the first level (default 2; 0 = none)
  --think-ms <ms>         mean pause of each user between an answer and its next message
                          (exponentially distributed; default 0: closed loop at full speed). With
                          pauses the load is what people would offer; the throughput and latency
                          targets are defined without them and are not checked
  --rounds <n>            at each level, the systems take turns this many times (A B A B ...);
                          each ratio is taken within a round and the median over the rounds is
                          reported with its range (default 1). On a virtual machine either
                          system alone moves by 10-40 % from run to run: use 3 or more for figures
                          you compare
  --systems <list>        which of switchboard,durable,core to run (default all three)
  --shared-connection     all simulated users share one NATS connection (default: one each)
  --idle-sessions <n>     sessions opened (not ended) for the worker memory measurement
                          (default 10000; 0 skips it)
  --backlog <k>           events generated while the host is stopped, for the catch-up
                          measurement (default 10000; 0 skips it)
  --routing-requests <n>  classifications per classifier for routing time (default 5000; 0 skips)
  --traffic-sessions <n>  after the timed runs, this many sessions per system (10 users) with a
                          wiretap on every subject: messages and header/payload bytes per turn by
                          kind of traffic (default 100; 0 skips)
  --agent-delay-ms <ms>   each task agent reply takes this long (SB_AGENT_DELAY_MS in the workers,
                          default 0): the load of agents that wait on a backend or a model. Each
                          level then also reports the ideal turns/s (users / delay) and the share
                          of it measured; the bus-limit targets are not checked
  --worker-concurrency <n> messages each worker handles at once per agent type (SB_CONCURRENCY;
                          default: the worker's own default)
  --profile               run the host and the workers under \`node --cpu-prof\` and summarize
                          the workers' profile (all written to <out dir>/profiles/)
  --log-level <lvl>       log level of host and worker processes (default info, as deployed);
                          their logs go to files in the temporary directory
  --out <file>            JSON results (default bench-results/bench.json); the chart is written
                          to latency-vs-load.svg in the same directory
  -h, --help              show this help

Every process the benchmark starts is stopped when it ends, fails or is interrupted (Ctrl-C).`;

export class UsageError extends Error {
  override name = "UsageError";
}

function positiveInt(flag: string, raw: string, allowZero = false): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || (!allowZero && n === 0)) throw new UsageError(`${flag} must be a ${allowZero ? "non-negative" : "positive"} integer, got ${JSON.stringify(raw)}`);
  return n;
}

function intList(flag: string, raw: string): number[] {
  const list = raw.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => positiveInt(flag, s));
  if (list.length === 0) throw new UsageError(`${flag} needs at least one value`);
  return [...new Set(list)].sort((a, b) => a - b);
}

function systemList(raw: string): SystemName[] {
  const names = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const n of names) if (!(SYSTEMS as readonly string[]).includes(n)) throw new UsageError(`unknown system "${n}" in --systems; choose from ${SYSTEMS.join(", ")}`);
  if (names.length === 0) throw new UsageError("--systems needs at least one value");
  return SYSTEMS.filter((s) => names.includes(s));
}

/** Parses the command line; returns undefined when help was asked for. */
export function parseOptions(argv: readonly string[]): BenchOptions | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        workers: { type: "string", default: "1" },
        concurrency: { type: "string", default: "1,10,50" },
        duration: { type: "string", default: "10" },
        sessions: { type: "string" },
        followups: { type: "string", default: "3" },
        timeout: { type: "string", default: "10000" },
        warmup: { type: "string", default: "2" },
        rounds: { type: "string", default: "1" },
        "think-ms": { type: "string", default: "0" },
        systems: { type: "string", default: SYSTEMS.join(",") },
        "shared-connection": { type: "boolean", default: false },
        "idle-sessions": { type: "string", default: "10000" },
        backlog: { type: "string", default: "10000" },
        "routing-requests": { type: "string", default: "5000" },
        "traffic-sessions": { type: "string", default: "100" },
        profile: { type: "boolean", default: false },
        "agent-delay-ms": { type: "string", default: "0" },
        "worker-concurrency": { type: "string" },
        "log-level": { type: "string", default: "info" },
        out: { type: "string", default: "bench-results/bench.json" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)} (see --help)`);
  }
  if (values.help) return undefined;
  return {
    workers: positiveInt("--workers", values.workers),
    concurrency: intList("--concurrency", values.concurrency),
    durationS: positiveInt("--duration", values.duration),
    sessions: values.sessions === undefined ? undefined : positiveInt("--sessions", values.sessions),
    followups: positiveInt("--followups", values.followups, true),
    timeoutMs: positiveInt("--timeout", values.timeout),
    warmupS: positiveInt("--warmup", values.warmup, true),
    rounds: positiveInt("--rounds", values.rounds),
    thinkMs: positiveInt("--think-ms", values["think-ms"], true),
    systems: systemList(values.systems),
    sharedConnection: values["shared-connection"],
    idleSessions: positiveInt("--idle-sessions", values["idle-sessions"], true),
    backlog: positiveInt("--backlog", values.backlog, true),
    routingRequests: positiveInt("--routing-requests", values["routing-requests"], true),
    trafficSessions: positiveInt("--traffic-sessions", values["traffic-sessions"], true),
    profile: values.profile,
    logLevel: values["log-level"],
    out: values.out,
    agentDelayMs: positiveInt("--agent-delay-ms", values["agent-delay-ms"], true),
    workerConcurrency: values["worker-concurrency"] === undefined ? undefined : positiveInt("--worker-concurrency", values["worker-concurrency"]),
  };
}
