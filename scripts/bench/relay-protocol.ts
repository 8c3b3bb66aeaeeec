/**
 * The baseline's wiring: the same chain of hops as a Switchboard turn, with nothing but forwarding
 * at each hop. Subjects mirror Switchboard's `sb.topic.<type>.<user>.<session>`.
 *
 *   client --default--> router hop --response (Routed)--> client
 *                                  --agent------------> agent hop --user_proxy--> proxy hop --response--> client
 *   follow-ups: client --agent--> agent hop --user_proxy--> proxy hop --response--> client
 */
export type RelayMode = "durable" | "core";

export const RELAY_PREFIX: Readonly<Record<RelayMode, string>> = { durable: "benchd", core: "benchc" };
export const RELAY_STREAM = "BENCH_RELAY";
export const RELAY_QUEUE = "bench-relay";
export const AGENT_TOPIC = "agent";

export const Hop = { Router: "default", Agent: AGENT_TOPIC, Proxy: "user_proxy" } as const;
export type Hop = (typeof Hop)[keyof typeof Hop];
export const HOPS: readonly Hop[] = [Hop.Router, Hop.Agent, Hop.Proxy];

/** Headers the relays carry along: which turn a message belongs to and what it is. */
export const TURN_HEADER = "bench-turn";
export const KIND_HEADER = "bench-kind";
export const Kind = { Message: "message", Routed: "routed", Reply: "reply" } as const;

/** Same settings as Switchboard's topic consumers (src/worker/topic-consumer.ts). */
export const RELAY_CONSUMER = { concurrency: 64, maxDeliver: 5, ackWaitMs: 30_000, maxAckPending: 10_000 } as const;

export function relaySubject(mode: RelayMode, topicType: string, user: string, session: string): string {
  return `${RELAY_PREFIX[mode]}.${topicType}.${user}.${session}`;
}

export function relayFilter(mode: RelayMode, topicType: string): string {
  return `${RELAY_PREFIX[mode]}.${topicType}.>`;
}

export function relayDurable(hop: Hop): string {
  return `relay__${hop}`;
}

export interface Forward {
  readonly topicType: string;
  readonly kind: string;
  readonly suffix: string;
}

/** Where a hop sends what it received, in order (the router publishes Routed, then forwards). */
export function forwardsOf(hop: string): readonly Forward[] {
  switch (hop) {
    case Hop.Router:
      return [
        { topicType: "response", kind: Kind.Routed, suffix: "routed" },
        { topicType: AGENT_TOPIC, kind: Kind.Message, suffix: "fwd" },
      ];
    case Hop.Agent:
      return [{ topicType: Hop.Proxy, kind: Kind.Reply, suffix: "reply" }];
    case Hop.Proxy:
      return [{ topicType: "response", kind: Kind.Reply, suffix: "out" }];
    default:
      return [];
  }
}
