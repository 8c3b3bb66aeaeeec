/**
 * A worker process whose finance agent publishes its reply and then never returns, so the message
 * is never acknowledged: killed there, it leaves a turn whose answer is out but whose message is
 * redelivered. Run with `node --import tsx`; prints `published <event id>` at that point.
 */
import type { Message } from "@bufbuild/protobuf";
import { connect } from "@nats-io/transport-node";
import { builtinAgents } from "../../src/agents/builtin.js";
import { createLogger } from "../../src/core/logging.js";
import { Subjects } from "../../src/core/subjects.js";
import type { AgentContext, AgentTypeDefinition, MessageContext } from "../../src/worker/agent.js";
import { Worker } from "../../src/worker/worker.js";

const [finance] = builtinAgents(["finance"]);
const holding: AgentTypeDefinition = {
  spec: finance!.spec,
  open: (env) => finance!.open?.(env) ?? Promise.resolve(),
  close: () => finance!.close?.() ?? Promise.resolve(),
  create(context: AgentContext) {
    const inner = finance!.create(context);
    return {
      async onMessage(message: Message, ctx: MessageContext): Promise<Message | undefined> {
        const out = await inner.onMessage(message, ctx);
        process.stdout.write(`published ${ctx.eventId}\n`);
        await new Promise(() => undefined);
        return out;
      },
    };
  },
};

const nc = await connect({ servers: (process.env["NATS_URL"] ?? "").split(","), name: "hold-ack-worker" });
const worker = new Worker({
  nc,
  subjects: new Subjects("sb"),
  logger: createLogger("hold-ack-worker", { level: "warn", pretty: false }),
  agents: [holding],
  workerId: process.argv[2] ?? "w-holding",
  consumer: { ackWaitMs: Number(process.env["SB_ACK_WAIT_MS"] ?? "1500") },
});
await worker.start();
process.stdout.write("ready\n");
