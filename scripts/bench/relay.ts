/**
 * A baseline relay process: the three hops of a turn for both baselines, doing nothing but
 * forwarding. Started by scripts/bench.ts with NATS_URL set; prints "ready" once consuming and
 * stops on SIGTERM/SIGINT after finishing in-flight messages.
 */
import { jetstream, type ConsumerMessages, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { connect, headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { forwardsOf, HOPS, KIND_HEADER, RELAY_CONSUMER, RELAY_QUEUE, RELAY_STREAM, relayDurable, relayFilter, relaySubject, TURN_HEADER, type RelayMode } from "./relay-protocol.js";

const MSG_ID = "Nats-Msg-Id";

function outHeaders(input: MsgHdrs | undefined, kind: string, id: string | undefined): MsgHdrs {
  const h = headers();
  h.set(TURN_HEADER, input?.get(TURN_HEADER) ?? "");
  h.set(KIND_HEADER, kind);
  if (id) h.set(MSG_ID, id);
  return h;
}

function parse(subject: string): { hop: string; user: string; session: string } | undefined {
  const [, hop, user, session] = subject.split(".");
  return hop && user && session ? { hop, user, session } : undefined;
}

async function relayDurableHop(js: JetStreamClient, messages: ConsumerMessages): Promise<void> {
  const inflight = new Set<Promise<void>>();
  const handle = async (m: JsMsg): Promise<void> => {
    const at = parse(m.subject);
    if (!at) return m.term();
    const inputId = m.headers?.get(MSG_ID) ?? `${m.info.streamSequence}`;
    for (const f of forwardsOf(at.hop)) {
      // Same durability as Switchboard: wait for the stream's ack, dedupe by a derived message id.
      const id = `${inputId}-${f.suffix}`;
      await js.publish(relaySubject("durable", f.topicType, at.user, at.session), m.data, { headers: outHeaders(m.headers, f.kind, id), msgID: id, retries: 5 });
    }
    m.ack();
  };
  for await (const m of messages) {
    while (inflight.size >= RELAY_CONSUMER.concurrency) await Promise.race(inflight);
    const task = handle(m)
      .catch(() => m.nak(250))
      .finally(() => inflight.delete(task));
    inflight.add(task);
  }
  await Promise.allSettled(inflight);
}

function relayCoreHop(nc: NatsConnection, hop: string): Subscription {
  return nc.subscribe(relayFilter("core", hop), {
    queue: RELAY_QUEUE,
    callback: (err, m: Msg) => {
      if (err) return;
      const at = parse(m.subject);
      if (!at) return;
      for (const f of forwardsOf(at.hop)) nc.publish(relaySubject("core", f.topicType, at.user, at.session), m.data, { headers: outHeaders(m.headers, f.kind, undefined) });
    },
  });
}

async function main(): Promise<void> {
  const url = process.env["NATS_URL"];
  if (!url) throw new Error("NATS_URL is not set");
  const modes = (process.env["BENCH_RELAY_MODES"] ?? "durable,core").split(",") as RelayMode[];
  // Like every Switchboard process: no async stack traces, so the baseline is the bus at its best.
  const nc = await connect({ servers: url, name: "bench-relay", maxReconnectAttempts: -1, noAsyncTraces: true });
  const js = jetstream(nc);
  const consumed: ConsumerMessages[] = [];
  const loops: Promise<void>[] = [];
  const subs: Subscription[] = [];
  if (modes.includes("durable")) {
    for (const hop of HOPS) {
      const consumer = await js.consumers.get(RELAY_STREAM, relayDurable(hop));
      const messages = await consumer.consume({ max_messages: RELAY_CONSUMER.concurrency });
      consumed.push(messages);
      loops.push(relayDurableHop(js, messages));
    }
  }
  if (modes.includes("core")) for (const hop of HOPS) subs.push(relayCoreHop(nc, hop));
  await nc.flush();
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  for (const s of subs) s.unsubscribe();
  for (const c of consumed) await c.close();
  await Promise.all(loops);
  await nc.drain();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench relay: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
