import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineAgent } from "../../src/agents/define-agent.js";
import { builtinAgents } from "../../src/agents/builtin.js";
import type { ChatEvent } from "../../src/cli/chat-session.js";
import { Role } from "../../src/core/roles.js";
import { expectSubscribeDenied } from "../helpers/permissions.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { subjects } from "../helpers/system.js";

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
  let server: SecureTestServer;

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice", "bob"] });
    await server.startHost();
    await server.startWorker([...builtinAgents(["router", "user_proxy"]), streamer]);
  });

  afterAll(async () => {
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
