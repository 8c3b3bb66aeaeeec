import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineAgent } from "../../src/agents/define-agent.js";
import { builtinAgents } from "../../src/agents/builtin.js";
import type { ChatEvent } from "../../src/cli/chat-session.js";
import { Role } from "../../src/core/roles.js";
import { Host } from "../../src/host/host.js";
import { Worker } from "../../src/worker/worker.js";
import { expectSubscribeDenied } from "../helpers/permissions.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { subjects, testLogger } from "../helpers/system.js";

const streamer = defineAgent({
  type: "streamer",
  description: "Answers in parts, as a language model would.",
  keywords: ["stream"],
  examples: ["stream me an answer"],
  async *reply() {
    yield "Parts ";
    yield "of an ";
    yield "answer.";
  },
});

/** Streamed replies with the shipped nats.conf: each user gets its own deltas and no one else's. */
describe("reply deltas on a server that requires credentials", () => {
  const logger = testLogger();
  let server: SecureTestServer;
  let host: Host;
  let worker: Worker;

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice", "bob"] });
    host = new Host({ nc: await server.open(Role.Host), subjects, logger, heartbeatIntervalMs: 300, workerTtlMs: 3_000 });
    await host.start();
    worker = new Worker({ nc: await server.open(Role.Worker), subjects, logger, agents: [...builtinAgents(["router", "user_proxy"]), streamer], drainTimeoutMs: 3_000 });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.close();
    await host?.close();
    await server?.stop();
  });

  it("a chat user receives the deltas of its own session with its own credentials", async () => {
    const chat = await server.chatAs("alice", { replyTimeoutMs: 10_000, streamReplies: true });
    const seen: ChatEvent[] = [];
    const events = await chat.send("please stream me an answer", (e) => seen.push(e));
    await chat.close();
    const streamed = seen.flatMap((e) => (e.event === "delta" ? [e.text] : [])).join("");
    expect(streamed).toBe("Parts of an answer.");
    expect(events.at(-1)).toMatchObject({ event: "reply", content: "Parts of an answer." });
  });

  it("a chat user may not read another user's deltas", async () => {
    const bob = await server.open(Role.Client, "bob");
    await expectSubscribeDenied(bob, subjects.userReplyDeltas("alice"));
    await expectSubscribeDenied(bob, subjects.allReplyDeltas);
  });
});
