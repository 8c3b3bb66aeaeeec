import { createInterface } from "node:readline";
import { connectNats } from "../../core/connection.js";
import { ConfigError, ErrorCode, errorMessage, SwitchboardError } from "../../core/errors.js";
import { createLogger } from "../../core/logging.js";
import { Role } from "../../core/roles.js";
import { Subjects } from "../../core/subjects.js";
import { RegistryView } from "../../host/registry-view.js";
import type { RoutingProfile } from "../../router/classifier.js";
import { closeCandidates, DEFAULT_AMBIGUITY_MARGIN, HybridClassifier, isAmbiguous, type AgentExplanation } from "../../router/hybrid/index.js";
import { parseProfiles, parseProfilesJson, readRoutingFile } from "../../router/profiles-file.js";
import { parseAgentsFile } from "../../agents/llm/agents-file.js";
import { DEFAULT_LEARNING_QUORUM, listLearned, openRoutingBucket, withSharedExamples } from "../../router/learned-examples.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { evaluate, formatReport, readLabelledRequests } from "../../router/evaluation.js";
import { routingDecider } from "../../router/decide.js";
import type { SwitchboardConfig } from "../../core/config.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";
import { CORPORA_HELP, corporaOptions, hybridCorpora } from "../classifier-options.js";
import { jsonLine, sanitizeForTerminal } from "../terminal.js";

export const ROUTE_HELP = `Usage: switchboard route [--profiles FILE] [--json] [TEXT...]
       switchboard route [--profiles FILE] [--json] --eval FILE.jsonl

Shows where the router would send each message, and why, without sending anything. Uses the
router's default classifier (hybrid: declared keywords, word overlap with the profile and
word-vector similarity, weighed against everyday requests and credited by the service-desk
domains each agent serves) and its ambiguity margin.

Each TEXT argument is one message; without arguments, every stdin line is one. One output line
per message: the agent (or "-" when none reaches the threshold), its score, the message, then
the intent (the strongest signal), the threshold, the runner-up, the best agent's signals, and
whether the router would ask the user to choose instead.

With --json, one object per line:
  {"text":...,"agent":"finance"|null,"score":0.99,"intent":...,"ambiguous":false,"candidates":[...],
   "scores":{"finance":0.99,"hr":0.24}}
("candidates" are the agents the router would offer when "ambiguous" is true).

With --eval, reads a labelled request set, one JSON object per line:
  {"text": "...", "expect": "finance"}      (or "expect": null when no agent should take it;
                                             "also": [...] lists other acceptable agent types)
and prints the share of in-scope requests routed to the right agent, of out-of-scope requests
rejected, how many would get a "which one?" question first, a confusion matrix (expected x
routed to) and every miss. --json prints the same as one JSON object.

Options:
  --profiles <file>   routing profiles from a JSON file: an array of
                      {"type","description","keywords":[...],"examples":[...]}, or the agents
                      of an agents file (YAML or JSON, see worker --agents-file); no NATS needed.
                      Without it, the routable agent types with a live worker are read from
                      the registry on --nats (a host must have created it), with the examples
                      learned from use that route every user's requests (see admin routing).
  --json              JSON lines instead of text
  --eval <file>       evaluate the profiles on a labelled request set (JSON lines)
${CORPORA_HELP}
${COMMON_HELP}`;

/** What one routing decision prints in --json mode. */
export interface RouteLine {
  readonly text: string;
  readonly agent: string | null;
  readonly score: number;
  readonly intent: string;
  readonly ambiguous: boolean;
  readonly candidates: readonly string[];
  readonly scores: Readonly<Record<string, number>>;
}

export async function routeCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("route", args, { profiles: { type: "string" }, json: { type: "boolean" }, eval: { type: "string" }, "everyday-background": { type: "string" }, "service-domains": { type: "string" } });
  if (values.help) {
    console.log(ROUTE_HELP);
    return 0;
  }
  const profiles = values.profiles !== undefined ? await profilesFrom(values.profiles) : await liveProfiles(configFrom(values));
  if (profiles.length === 0) throw new SwitchboardError(ErrorCode.NotFound, "no routable agent type has a live worker; start one (switchboard worker) or use --profiles FILE");
  const classifier = new HybridClassifier(corporaOptions(hybridCorpora(values)));
  classifier.setProfiles(profiles);
  const write = (line: string) => process.stdout.write(`${line}\n`);
  if (values.eval !== undefined) {
    if (positionals.length > 0) throw new ConfigError("--eval reads its requests from the file; give no TEXT arguments with it");
    const requests = await readLabelledRequests(values.eval);
    if (requests.length === 0) throw new ConfigError(`no labelled requests in ${values.eval}`);
    const types = profiles.map((p) => p.type);
    const unknown = [...new Set(requests.flatMap((r) => [r.expect, ...(r.also ?? [])]).filter((t): t is string => t !== null && !types.includes(t)))];
    // A misspelt label would count as a miss of an agent that does not exist.
    for (const type of unknown) process.stderr.write(sanitizeForTerminal(`warning: ${values.eval} names agent type "${type}", which no profile has (known: ${types.join(", ")})\n`));
    const report = evaluate(requests, routingDecider(classifier, DEFAULT_AMBIGUITY_MARGIN));
    write(values.json ? jsonLine(report) : sanitizeForTerminal(formatReport(report, [...types, ...unknown])));
    return 0;
  }
  const show = (text: string) => {
    const line = decide(classifier, text);
    write(values.json ? jsonLine(line) : describe(line, classifier.threshold, classifier.explain(text)));
  };
  if (positionals.length > 0) {
    for (const text of positionals) show(text);
    return 0;
  }
  // Someone at a terminal who gave no message would otherwise see nothing happen.
  if (process.stdin.isTTY) process.stderr.write("switchboard: type one message a line to see where it would go; Ctrl-D ends (or pass them as arguments)\n");
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  try {
    for await (const raw of lines) {
      const text = raw.trim();
      if (text !== "") show(text);
    }
  } finally {
    lines.close();
  }
  return 0;
}

/** Profiles from a profiles file, or the agents of an agents file (YAML, or JSON with "agents"); the file is read once. */
async function profilesFrom(path: string): Promise<readonly RoutingProfile[]> {
  const text = await readRoutingFile(path, "profiles file");
  const agents = () => parseAgentsFile(path, text, process.env, false).map(({ type, description, keywords, examples }) => ({ type, description, keywords, examples }));
  if (/\.ya?ml$/i.test(path)) return agents();
  const raw = parseProfilesJson(text, path);
  return typeof raw === "object" && raw !== null && !Array.isArray(raw) && "agents" in raw ? agents() : parseProfiles(raw, path);
}

/** The routable agent types with a live worker, from the registry. */
async function liveProfiles(config: SwitchboardConfig): Promise<readonly RoutingProfile[]> {
  const logger = createLogger("switchboard-route", { level: config.logLevel === "info" ? "warn" : config.logLevel });
  const nc = await connectNats(config, { name: "switchboard-route", role: Role.Admin, warn: warnOnStderr });
  try {
    const view = new RegistryView(nc, new Subjects(config.prefix), logger);
    try {
      await view.start();
    } catch (err) {
      throw new ConfigError(`cannot read the agent registry on ${config.natsUrl} (${errorMessage(err)}); is a host running? Or use --profiles FILE`);
    }
    const profiles = view.profiles();
    await view.close();
    // Awaited here: the connection drains when this block ends.
    return await withLearned(nc, new Subjects(config.prefix), profiles);
  } finally {
    await nc.drain();
  }
}

/** The profiles with the learned examples every user's routing shares, as the router indexes them. */
async function withLearned(nc: NatsConnection, subjects: Subjects, profiles: readonly RoutingProfile[]): Promise<readonly RoutingProfile[]> {
  try {
    return withSharedExamples(profiles, await listLearned(await openRoutingBucket(nc, subjects), subjects), DEFAULT_LEARNING_QUORUM);
  } catch {
    // No bucket (an older host) or no right to read it: the profiles as registered.
    return profiles;
  }
}

function decide(classifier: HybridClassifier, text: string): RouteLine {
  const c = classifier.classify(text);
  const ambiguous = isAmbiguous(c, DEFAULT_AMBIGUITY_MARGIN);
  return {
    text,
    agent: c.agent ?? null,
    score: round(c.score),
    intent: c.intent,
    ambiguous,
    candidates: ambiguous ? closeCandidates(c, DEFAULT_AMBIGUITY_MARGIN) : [],
    scores: Object.fromEntries(c.ranked.map((r) => [r.agent, round(r.score)])),
  };
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

/** One line for a person: decision first, then the evidence behind it. */
function describe(line: RouteLine, threshold: number, explained: readonly AgentExplanation[]): string {
  const [best, second] = explained;
  const why = [line.intent, `threshold ${threshold.toFixed(2)}`];
  if (!line.agent && best) why.push(`best ${best.agent} ${best.score.toFixed(3)}`);
  why.push(second ? `runner-up ${second.agent} ${second.score.toFixed(3)}` : "no runner-up");
  if (best) {
    const s = best.signals;
    why.push(`${best.agent} signals: keyword ${s.keyword ?? "-"}, lexical ${s.lexical.toFixed(2)}, semantic ${s.semantic.toFixed(2)}, sentence ${s.sentence.toFixed(2)}`);
    if (best.service) why.push(`reads as "${best.service.domain}", which ${best.agent} serves: +${best.service.evidence.toFixed(2)} evidence`);
  }
  if (line.ambiguous) why.push(`ambiguous: the router would ask the user to choose between ${line.candidates.join(", ")}`);
  const agent = (line.agent ?? "-").padEnd(12);
  return `${agent} ${line.score.toFixed(3)}  ${JSON.stringify(sanitizeForTerminal(line.text))}  [${why.map(sanitizeForTerminal).join("; ")}]`;
}
