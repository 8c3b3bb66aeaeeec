import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { runLoad, type UserFactory } from "./load.js";

/** Messages and bytes of one kind of traffic, per completed turn. */
export interface TrafficClass {
  /** What the messages are, for example `sb.topic.<agent>` or `$KV.agent_state`. */
  readonly kind: string;
  readonly msgsPerTurn: number;
  /** Mean header block and payload of one message, in bytes. */
  readonly headerBytes: number;
  readonly payloadBytes: number;
  readonly bytesPerTurn: number;
}

export interface TrafficBreakdown {
  readonly system: string;
  readonly turns: number;
  readonly classes: readonly TrafficClass[];
}

/** Topic types that are not an agent's own (everything else is lumped as `<agent>`). */
const SYSTEM_TOPICS: ReadonlySet<string> = new Set(["default", "response", "user_proxy"]);

/**
 * The kind of a message, by subject. A wiretap on `>` sees every publish once and every delivery
 * to a subscription once more (JetStream deliveries keep the stored message's subject), so an
 * event stored and then delivered to two consumers counts three times, as it crosses the wire.
 */
export function trafficKind(subject: string): string {
  const t = subject.split(".");
  const [first = "", second = "", third = "", fourth = ""] = t;
  if (first === "sb" && second === "topic") return `sb.topic.${SYSTEM_TOPICS.has(third) ? third : "<agent>"}`;
  if (first === "benchd" || first === "benchc") return `${first}.${SYSTEM_TOPICS.has(second) ? second : "<agent>"}`;
  if (first === "$JS" && second === "ACK") return "$JS.ACK (acks)";
  if (first === "$JS" && second === "FC") return "$JS.FC (flow control)";
  if (first === "$JS" && second === "API") return `$JS.API.${third}.${fourth}`;
  if (first === "$JS" && second === "EVENT") return "$JS.EVENT (advisories)";
  if (first === "$KV") return `$KV.${second}`;
  if (first.startsWith("_INBOX") || first.startsWith("_")) return "_INBOX (replies, pull requests)";
  return t.slice(0, 2).join(".");
}

/** Size of a message's header block as it travels (`NATS/1.0` line, `Key: value` lines, blank line). */
function headerBytes(msg: Msg): number {
  if (!msg.headers) return 0;
  let size = "NATS/1.0\r\n\r\n".length;
  for (const [key, values] of msg.headers) for (const v of values) size += key.length + 2 + v.length + 2;
  return size;
}

/**
 * Runs `sessions` whole sessions at `concurrency` users while a separate connection taps every
 * subject, and charges what it saw to the turns. Not a speed measurement: the tap doubles the
 * server's deliveries, so it runs apart from the timed runs.
 */
export async function measureTraffic(
  tap: NatsConnection,
  system: string,
  factory: UserFactory,
  options: { readonly sessions: number; readonly concurrency: number; readonly followups: number },
): Promise<TrafficBreakdown> {
  const seen = new Map<string, { n: number; header: number; payload: number }>();
  let counting = false;
  const sub = tap.subscribe(">", {
    callback: (_err, msg) => {
      if (!counting) return;
      const kind = trafficKind(msg.subject);
      const entry = seen.get(kind) ?? { n: 0, header: 0, payload: 0 };
      entry.n++;
      entry.header += headerBytes(msg);
      entry.payload += msg.data.length;
      seen.set(kind, entry);
    },
  });
  try {
    await tap.flush();
    counting = true;
    const run = await runLoad(factory, { system, concurrency: options.concurrency, sessions: options.sessions, followups: options.followups, accounted: [], quiet: true });
    // What the run sent last is still on its way to the tap.
    await tap.flush();
    counting = false;
    const turns = Math.max(1, run.turns);
    const r = (v: number, digits = 0) => Math.round(v * 10 ** digits) / 10 ** digits;
    const classes = [...seen.entries()]
      .map(([kind, e]) => ({
        kind,
        msgsPerTurn: r(e.n / turns, 2),
        headerBytes: r(e.header / e.n),
        payloadBytes: r(e.payload / e.n),
        bytesPerTurn: r((e.header + e.payload) / turns),
      }))
      .filter((c) => c.msgsPerTurn >= 0.005)
      .sort((a, b) => b.bytesPerTurn - a.bytesPerTurn);
    return { system, turns: run.turns, classes };
  } finally {
    sub.unsubscribe();
  }
}

export function formatTraffic(breakdowns: readonly TrafficBreakdown[]): string {
  const lines: string[] = [];
  for (const b of breakdowns) {
    const total = b.classes.reduce((s, c) => ({ msgs: s.msgs + c.msgsPerTurn, bytes: s.bytes + c.bytesPerTurn }), { msgs: 0, bytes: 0 });
    lines.push(`wire traffic per turn, ${b.system} (${b.turns} turns): ${total.msgs.toFixed(1)} messages, ${total.bytes} bytes`);
    lines.push(`  ${"kind".padEnd(34)} ${"msgs".padStart(6)} ${"header B".padStart(9)} ${"payload B".padStart(10)} ${"B/turn".padStart(7)}`);
    for (const c of b.classes) {
      lines.push(`  ${c.kind.padEnd(34)} ${c.msgsPerTurn.toFixed(2).padStart(6)} ${String(c.headerBytes).padStart(9)} ${String(c.payloadBytes).padStart(10)} ${String(c.bytesPerTurn).padStart(7)}`);
    }
  }
  return lines.join("\n");
}
