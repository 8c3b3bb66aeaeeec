/**
 * How one turn maps onto the bus, for Switchboard and for the relay baselines (which copy it hop
 * for hop). "JetStream publish" = publish + wait for the stream's ack; "consumer delivery" = a
 * pull from a durable consumer + explicit ack; "core delivery" = the client's plain subscription.
 */
export const HOP_MAPPING = {
  firstMessage: {
    path: [
      "client -> sb.topic.default.<user>.<session>            (JetStream publish 1)",
      "router consumer router__default delivers + acks        (consumer delivery 1)",
      "router -> sb.topic.response... Routed                  (JetStream publish 2; client gets it, core delivery 1, not final)",
      "router -> sb.topic.<agent>... forwarded UserMessage    (JetStream publish 3, after publish 2's ack)",
      "agent consumer <agent>__<agent> delivers + acks        (consumer delivery 2)",
      "agent -> sb.topic.user_proxy... AgentReply             (JetStream publish 4)",
      "user proxy consumer user_proxy__user_proxy delivers    (consumer delivery 3)",
      "user proxy -> sb.topic.response... AgentReply          (JetStream publish 5; client gets it, core delivery 2, final)",
    ],
    jetstreamPublishes: 5,
    consumerDeliveries: 3,
    clientDeliveries: 2,
  },
  followUp: {
    path: [
      "client -> sb.topic.<agent>.<user>.<session>            (JetStream publish 1)",
      "agent consumer delivers + acks                          (consumer delivery 1)",
      "agent -> sb.topic.user_proxy... AgentReply / Termination (JetStream publish 2)",
      "user proxy consumer delivers + acks                     (consumer delivery 2)",
      "user proxy -> sb.topic.response... AgentReply / SessionEnded (JetStream publish 3; core delivery 1, final)",
    ],
    jetstreamPublishes: 3,
    consumerDeliveries: 2,
    clientDeliveries: 1,
  },
  offPath: "The host's projector also reads every event (5 + 3 per later turn, through an ordered consumer without acks) and updates the sessions KV bucket, one write per session per 100 ms round; it is not on the turn's path but shares the machine.",
  baseline:
    "The relays use subjects benchd.<hop>.<user>.<session> (durable: stream BENCH_RELAY, consumers relay__default / relay__agent / relay__user_proxy configured like Switchboard's) and benchc.* (core: plain publish/subscribe, queue group per hop). The router hop publishes a 'routed' copy to response and then forwards, in that order, each waiting for its ack; the agent and proxy hops forward once. The client waits for the final 'reply' on a core subscription, as ChatSession does.",
} as const;
