import { equals, toJson } from "@bufbuild/protobuf";
import { timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { connectNats } from "../../core/connection.js";
import { ConfigError, PermissionDeniedError } from "../../core/errors.js";
import { credentialsPath } from "../../core/credentials.js";
import { Role } from "../../core/roles.js";
import { validateToken } from "../../core/ids.js";
import { Subjects } from "../../core/subjects.js";
import { EndReason } from "../../gen/switchboard/v1/conversation_pb.js";
import {
  AgentRecordSchema,
  AgentTypeSpecSchema,
  DeadLetterSchema,
  SessionRecordSchema,
  SessionState,
  TranscriptRole,
  WorkerRecordSchema,
  type AgentRecord,
  type SessionRecord,
} from "../../gen/switchboard/v1/registry_pb.js";
import { HostClient } from "../../host/client.js";
import { RegistryView } from "../../host/registry-view.js";
import { createLogger } from "../../core/logging.js";
import type { NatsConnection } from "@nats-io/transport-node";
import { untilShutdown } from "../lifecycle.js";
import type { KV } from "@nats-io/kv";
import { errorMessage } from "../../core/errors.js";
import { LearnedExampleSchema } from "../../gen/switchboard/v1/learning_pb.js";
import { forgetLearned, forgetUserTeaching, learnedAt, LearnedSource, listLearned, MAX_LEARNED_TEXT_LENGTH, openRoutingBucket, recordLearned, SOURCE_NAMES } from "../../router/learned-examples.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";
import { renderStats } from "../stats-view.js";
import { watchStats } from "../stats-watch.js";
import { readSystemStats } from "../system-stats.js";
import { ago, formatTable, jsonLine, sanitizeForTerminal } from "../terminal.js";

export const ADMIN_HELP = `Usage: switchboard admin <agents|workers|sessions|session <id>|dead-letters|replay <seq>|stats|watch|routing ...> [--json] [options]

Queries the registry and session state kept by the host.
  agents              agent types, whether a live worker serves them (and how many definitions
                      their workers registered, when they differ), and their routing keywords
  workers             live workers, where they run and when they last heartbeated
  sessions            recent sessions, newest first (--limit, default 50)
  session <id>        one session with its transcript
  dead-letters        messages whose handler kept failing, newest first (--limit, default 50)
  replay <seq>        publish dead letter <seq> again on its original subject and remove it
  stats               per agent type and worker: turns, latency, in flight, backlog, dead letters,
                      routing decisions (read from the workers' and hosts' NATS micro STATS)
  watch               the same, live, refreshed every --interval seconds (default 2); Ctrl-C quits
  routing [TYPE]      routing examples learned from use (all agent types, or one), newest first,
                      with when and why each was learned and how many users taught it (one
                      user's example routes only that user's requests until a second agrees)
  routing forget TYPE|ID|TYPE.ID
                      remove every learned example of an agent type, the request with that id
                      (for every type it was learned for), or one record
  routing forget --user USER [TYPE]
                      take back what one chat user taught (of every type, or one): examples only
                      they taught are removed, others lose their vote
  routing add TYPE "TEXT"
                      teach the router that TEXT is for agent type TYPE, for every user
                      (TYPE must be a routable agent type in the registry)

Runs with the admin credentials (read-only). replay needs the host's (--creds host.nk from the
auth directory, see \`switchboard auth --help\`); routing forget and add use them by themselves.

Options:
  --json              print JSON instead of a table
  --limit <n>         how many sessions or dead letters to list (default 50)
  --interval <s>      seconds between refreshes of watch (default 2)
  --user <name>       routing: only the examples this chat user taught
${COMMON_HELP}`;

const STATES: Record<number, string> = { [SessionState.OPEN]: "open", [SessionState.ROUTED]: "routed", [SessionState.ENDED]: "ended" };
const REASONS: Record<number, string> = { [EndReason.USER_REQUEST]: "user_request", [EndReason.AGENT_FINISHED]: "agent_finished" };
const ROLES: Record<number, string> = { [TranscriptRole.USER]: "user", [TranscriptRole.AGENT]: "agent", [TranscriptRole.SYSTEM]: "system" };

const when = (t: Timestamp | undefined) => (t ? ago(timestampMs(t)) : "-");
const iso = (t: Timestamp | undefined) => (t ? new Date(timestampMs(t)).toISOString() : "-");
const print = (s: string) => process.stdout.write(`${s}\n`);

export async function adminCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("admin", args, { json: { type: "boolean" }, limit: { type: "string" }, interval: { type: "string" }, user: { type: "string" } });
  const [what, id, ...rest] = positionals;
  if (values.help || !what) {
    print(ADMIN_HELP);
    return values.help ? 0 : 2;
  }
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit <= 0) throw new ConfigError(`--limit must be a positive integer, got ${JSON.stringify(values.limit)}`);
  if (!["agents", "workers", "sessions", "session", "dead-letters", "replay", "stats", "watch", "routing"].includes(what)) {
    throw new ConfigError(`unknown admin query "${what}"; use agents, workers, sessions, session <id>, dead-letters, replay <seq>, stats, watch or routing`);
  }
  const intervalSeconds = values.interval === undefined ? 2 : Number(values.interval);
  if (!(intervalSeconds >= 0.5 && intervalSeconds <= 3600)) throw new ConfigError(`--interval must be a number of seconds from 0.5 to 3600, got ${JSON.stringify(values.interval)}`);
  if (values.user !== undefined && what !== "routing") throw new ConfigError("--user applies to admin routing only");
  if (what === "routing") return routingCommand(values, id, rest);
  if (what === "session") {
    if (!id) throw new ConfigError("usage: switchboard admin session <id>");
    validateToken("session id", id);
  }
  if (what === "replay" && !(id && /^[1-9][0-9]*$/.test(id))) throw new ConfigError("usage: switchboard admin replay <seq> (a number from `switchboard admin dead-letters`)");
  const config = configFrom(values);
  const nc = await connectNats(config, { name: "switchboard-admin", role: Role.Admin, warn: warnOnStderr });
  try {
    const host = new HostClient(nc, new Subjects(config.prefix));
    const json = values.json === true;
    switch (what) {
      case "stats": {
        const stats = await readSystemStats(nc);
        if (json) return printJson(stats);
        print(renderStats(stats));
        return 0;
      }
      case "watch": {
        const stop = new AbortController();
        void untilShutdown(stop.signal).then(() => stop.abort());
        await watchStats(nc, intervalSeconds * 1000, process.stdout, stop.signal);
        return 0;
      }
      case "agents": {
        const agents = await host.agents();
        if (json) return printJson(agents.map((a) => toJson(AgentRecordSchema, a)));
        print(
          formatTable(
            ["TYPE", "AVAILABLE", "WORKERS", "ROUTABLE", "KEYWORDS", "DESCRIPTION"],
            agents.map((a) => [
              a.spec?.type ?? "?",
              a.available ? "yes" : "no",
              // Workers that define the type differently share its messages: say so where it shows.
              `${a.workerIds.length}${definitions(a) > 1 ? ` (${definitions(a)} definitions)` : ""}`,
              a.spec?.routable ? "yes" : "no",
              a.spec?.keywords.join(", ") || "-",
              truncate(a.spec?.description ?? "", 60),
            ]),
          ),
        );
        return 0;
      }
      case "workers": {
        const workers = await host.workers();
        if (json) return printJson(workers.map((w) => toJson(WorkerRecordSchema, w)));
        print(formatTable(["WORKER", "HOST", "PID", "AGENT TYPES", "LAST HEARTBEAT", "STARTED"], workers.map((w) => [w.workerId, w.hostname, String(w.pid), w.agentTypes.join(","), when(w.lastHeartbeatAt), iso(w.startedAt)])));
        return 0;
      }
      case "sessions": {
        const sessions = await host.sessions(limit);
        if (json) return printJson(sessions.map((s) => toJson(SessionRecordSchema, s)));
        print(formatTable(["SESSION", "USER", "STATE", "AGENT", "TURNS", "UPDATED"], sessions.map((s) => [s.sessionId, s.user, STATES[s.state] ?? "?", s.agentType || "-", String(s.turns), when(s.updatedAt)])));
        return 0;
      }
      case "dead-letters": {
        const letters = await host.deadLetters(limit);
        if (json) return printJson(letters.map((d) => toJson(DeadLetterSchema, d)));
        print(
          formatTable(
            ["SEQ", "AGENT", "USER", "SESSION", "DELIVERIES", "FAILED", "ERROR"],
            letters.map((d) => [String(d.seq), d.agentType, d.user, d.sessionId, String(d.deliveries), when(d.failedAt), truncate(d.error, 60)]),
          ),
        );
        return 0;
      }
      case "replay": {
        const replayed = await host.replayDeadLetter(Number(id)).catch((err: unknown) => {
          // The admin role only reads; a replay writes into conversations.
          if (err instanceof PermissionDeniedError) {
            throw new PermissionDeniedError("request", err.subject, `the admin role only reads; replaying changes a conversation, so it needs the host's credentials (--creds ${credentialsPath(config.authDir, Role.Host)})`, { cause: err });
          }
          throw err;
        });
        if (json) return printJson(replayed);
        print(sanitizeForTerminal(`replayed dead letter ${id} to ${replayed.subject} as event ${replayed.eventId}`));
        return 0;
      }
      default: {
        const session = await host.session(id ?? "");
        if (!session) {
          process.stderr.write(`no session ${id} (see \`switchboard admin sessions\`)\n`);
          return 1;
        }
        if (json) return printJson(toJson(SessionRecordSchema, session));
        print(describeSession(session));
        return 0;
      }
    }
  } finally {
    await nc.drain();
  }
}

/**
 * Resolves once the output is handed to the OS: the process exits right after a command, and a
 * large listing written to a pipe would otherwise be cut short.
 */
function printJson(value: unknown): Promise<number> {
  return new Promise((resolve, reject) => process.stdout.write(`${jsonLine(value, 2)}\n`, (err) => (err ? reject(err) : resolve(0))));
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function describeSession(s: SessionRecord): string {
  const lines = [
    `session   ${s.sessionId}`,
    `user      ${s.user}`,
    `state     ${STATES[s.state] ?? "?"}${s.state === SessionState.ENDED ? ` (${REASONS[s.endReason] ?? "unspecified"})` : ""}`,
    `agent     ${s.agentType || "-"}${s.intent ? ` (${s.intent}, score ${s.score.toFixed(2)})` : ""}`,
    `turns     ${s.turns}`,
    `created   ${iso(s.createdAt)}`,
    `updated   ${iso(s.updatedAt)}`,
  ];
  if (s.endedAt) lines.push(`ended     ${iso(s.endedAt)}`);
  lines.push("", "transcript:");
  for (const e of s.transcript) lines.push(`  [${ROLES[e.role] ?? "?"}] ${e.author}: ${e.text.replace(/\s+/g, " ")}`);
  // Records hold what agents and users wrote: nothing of it may reach the terminal as a control.
  return lines.map(sanitizeForTerminal).join("\n");
}

/** `admin routing [TYPE]`, `admin routing forget TYPE|ID`, `admin routing add TYPE "TEXT"`, each `--user`. */
async function routingCommand(
  values: Parameters<typeof configFrom>[0] & { json?: boolean | undefined; user?: string | undefined },
  verb: string | undefined,
  rest: readonly string[],
): Promise<number> {
  const config = configFrom(values);
  const subjects = new Subjects(config.prefix);
  const writes = verb === "forget" || verb === "add";
  const user = values.user;
  if (user !== undefined) validateToken("user name", user);
  if (verb === "forget" && (user === undefined ? rest.length !== 1 : rest.length > 1)) {
    throw new ConfigError("usage: switchboard admin routing forget TYPE|ID|TYPE.ID, or forget --user USER [TYPE]");
  }
  if (verb === "add" && rest.length !== 2) throw new ConfigError('usage: switchboard admin routing add TYPE "TEXT"');
  if (verb === "add" && user !== undefined) throw new ConfigError("admin routing add teaches for every user; it takes no --user");
  if (!writes && rest.length > 0) throw new ConfigError("usage: switchboard admin routing [TYPE] [--user USER]");
  const type = writes ? rest[0] : verb;
  if (type !== undefined && !(verb === "forget" && user === undefined && /^(?:.+\.)?[0-9a-f]{16}$/.test(type))) validateToken("agent type", type);
  // Writing learned examples changes routing for everyone; the read-only admin role may only list.
  const nc = await connectNats(config, { name: "switchboard-admin", role: writes ? Role.Host : Role.Admin, warn: warnOnStderr });
  try {
    let kv: KV;
    try {
      kv = await openRoutingBucket(nc, subjects);
      await kv.status();
    } catch (err) {
      if (isPermissionError(err)) {
        const role = writes ? Role.Host : Role.Admin;
        throw new PermissionDeniedError("request", subjects.routingBucket, `reading learned routing needs the ${role} credentials (--creds ${credentialsPath(config.authDir, role)})`, { cause: err });
      }
      throw new ConfigError(`cannot open the routing bucket ${subjects.routingBucket} on ${config.natsUrl} (${errorMessage(err)}); is a host running?`);
    }
    const denied = (err: unknown): never => {
      if (isPermissionError(err)) {
        throw new PermissionDeniedError("publish", subjects.routingBucket, `changing learned routing needs the host's credentials (--creds ${credentialsPath(config.authDir, Role.Host)})`, { cause: err });
      }
      throw err;
    };
    if (verb === "add") {
      await requireRoutableType(nc, subjects, config.natsUrl, rest[0]!);
      const added = await recordLearned(kv, subjects, { agentType: rest[0]!, text: rest[1]!, source: LearnedSource.OPERATOR, detail: "added by an operator" }).catch(denied);
      if (!added) throw new ConfigError(`the text must be 1-${MAX_LEARNED_TEXT_LENGTH} characters`);
      if (values.json) return printJson(toJson(LearnedExampleSchema, added));
      print(sanitizeForTerminal(`learned ${added.id}: ${JSON.stringify(added.text)} is for ${added.agentType}`));
      return 0;
    }
    if (verb === "forget" && user !== undefined) {
      const { forgotten, kept } = await forgetUserTeaching(kv, subjects, user, type).catch(denied);
      if (values.json) return printJson({ forgotten: forgotten.map((e) => toJson(LearnedExampleSchema, e)), kept: kept.map((e) => toJson(LearnedExampleSchema, e)) });
      if (forgotten.length + kept.length === 0) {
        process.stderr.write(sanitizeForTerminal(`no learned example${type === undefined ? "" : ` of type ${type}`} was taught by ${user} (see \`switchboard admin routing --user ${user}\`)\n`));
        return 1;
      }
      const plural = (n: number) => `${n} learned example${n === 1 ? "" : "s"}`;
      print(sanitizeForTerminal(`forgot ${plural(forgotten.length)} only ${user} taught; took ${user}'s vote from ${plural(kept.length)} others taught too`));
      return 0;
    }
    if (verb === "forget") {
      const removed = await forgetLearned(kv, subjects, rest[0]!).catch(denied);
      if (values.json) return printJson(removed.map((e) => toJson(LearnedExampleSchema, e)));
      if (removed.length === 0) {
        process.stderr.write(sanitizeForTerminal(`no learned example of type or id ${rest[0]} (see \`switchboard admin routing\`)\n`));
        return 1;
      }
      print(sanitizeForTerminal(`forgot ${removed.length} learned example${removed.length === 1 ? "" : "s"}`));
      return 0;
    }
    const examples = (await listLearned(kv, subjects, type)).filter((e) => user === undefined || e.users.includes(user));
    if (values.json) return printJson(examples.map((e) => toJson(LearnedExampleSchema, e)));
    print(
      formatTable(
        ["ID", "TYPE", "LEARNED", "USERS", "WHY", "TEXT"],
        examples.map((e) =>
          [
            e.id,
            e.agentType,
            e.learnedAt ? ago(learnedAt(e)) : "-",
            e.source === LearnedSource.OPERATOR ? "-" : String(e.users.length),
            `${SOURCE_NAMES[e.source] ?? "?"}: ${e.detail}`,
            truncate(e.text.replace(/\s+/g, " "), 70),
          ].map(sanitizeForTerminal),
        ),
      ),
    );
    return 0;
  } finally {
    await nc.drain();
  }
}

/** How many different definitions of an agent type its listed workers registered. */
function definitions(agent: AgentRecord): number {
  const specs = agent.workerIds.flatMap((id) => (agent.workerSpecs[id] ? [agent.workerSpecs[id]] : []));
  return specs.filter((spec, i) => specs.findIndex((other) => equals(AgentTypeSpecSchema, other, spec)) === i).length;
}

/** An example for a type the router can never route to would do nothing, silently. */
async function requireRoutableType(nc: NatsConnection, subjects: Subjects, url: string, type: string): Promise<void> {
  const view = new RegistryView(nc, subjects, createLogger("switchboard-admin", { level: "warn" }));
  try {
    await view.start();
  } catch (err) {
    throw new ConfigError(`cannot read the agent registry on ${url} (${errorMessage(err)}); is a host running?`);
  }
  try {
    if (view.isRoutable(type)) return;
    const known = view.routableTypes();
    throw new ConfigError(`no routable agent type "${type}" in the registry${known.length > 0 ? ` (routable types: ${known.join(", ")})` : " (no routable agent type has registered yet)"}`);
  } finally {
    await view.close();
  }
}

function isPermissionError(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) if (/permission/i.test(e.message)) return true;
  return false;
}
