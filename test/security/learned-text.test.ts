import { create, isMessage } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUILTIN_AGENT_TYPES, builtinAgents } from "../../src/agents/builtin.js";
import { encodeEvent } from "../../src/core/codec.js";
import { Role } from "../../src/core/roles.js";
import { RoutedSchema, UserMessageSchema, type Routed } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { LearnedSource, listLearned, openRoutingBucket, recordLearned } from "../../src/router/learned-examples.js";
import { publishedIntent } from "../../src/router/router-agent.js";
import { watchResponses } from "../helpers/responses.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { eventually, subjects } from "../helpers/system.js";

/** What alice answered a "which one?" question about: it becomes a routing example of hr. */
const SECRET = "Can I take leave for my chemotherapy after the divorce hearing?";

const wordsOf = (text: string) => new Set(text.toLowerCase().match(/[a-z]+/g) ?? []);

describe("words of one user's requests, learned for routing, do not reach another user", () => {
  let server: SecureTestServer;

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice", "mallory"] });
    await server.startHost();
    await server.startWorker(builtinAgents(BUILTIN_AGENT_TYPES));
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  async function send(nc: NatsConnection, user: string, session: string, body: Parameters<typeof encodeEvent>[1], schema: Parameters<typeof encodeEvent>[0]): Promise<void> {
    const event = encodeEvent(schema, body, { source: `switchboard/chat/${user}` });
    await jetstream(nc).publish(subjects.topic({ type: "default", source: { user, session } }), event.data, { headers: event.headers, timeout: 10_000 });
  }

  it("a Routed names the kind of evidence and the prober's own word, never a word of a learned example", async () => {
    // Alice's (and bob's) answer to a "which one?" question, as the router records it (it learns only answers
    // it would have asked about, so the record is written here directly).
    const hostKv = await openRoutingBucket(await server.open(Role.Host), subjects);
    // Two users asked it, so it routes every user's requests and joins hr's examples.
    await recordLearned(hostKv, subjects, { agentType: "hr", text: SECRET, source: LearnedSource.CLARIFY_ANSWER, detail: "the user chose it when asked", users: ["alice", "bob"] });
    const kv = await openRoutingBucket(await server.open(Role.Admin), subjects);
    await eventually(async () => ((await listLearned(kv, subjects)).some((e) => e.text === SECRET) ? true : undefined), 10_000, "alice's answer learned");

    // Mallory probes with words near those of alice's request (word vectors and the lexicon
    // relate them): before, `semantic:treatment~chemotherapy` and `semantic:custody~divorce`
    // answered her with alice's words.
    const mallory = await server.open(Role.Client, "mallory");
    const seen = await watchResponses(mallory, "mallory");
    const probes = ["treatment", "custody", "hearings", "a trial in court", "therapy for my illness", "leave for radiotherapy", "chemotherapy", SECRET];
    for (const [i, text] of probes.entries()) {
      await send(mallory, "mallory", `p${i}`, create(UserMessageSchema, { sessionId: `p${i}`, user: "mallory", turnId: "t1", text }), UserMessageSchema);
    }
    const routed = await eventually(
      async () => {
        const got = new Map(seen.flatMap((e) => (isMessage(e.message, RoutedSchema) ? [[e.session, e.message as Routed] as const] : [])));
        // The probes that are routed at all: every one of them but those nothing fits.
        return got.has(`p${probes.length - 1}`) && got.has("p0") && got.has("p1") ? got : undefined;
      },
      15_000,
      "probes routed",
    );
    expect(routed.get(`p${probes.length - 1}`)).toMatchObject({ agentType: "hr", intent: "learned" });
    const secretWords = wordsOf(SECRET);
    for (const [session, r] of routed) {
      const probe = probes[Number(session.slice(1))] ?? "";
      const leaked = [...wordsOf(r.intent)].filter((w) => secretWords.has(w) && !wordsOf(probe).has(w));
      expect({ probe, intent: r.intent, leaked }).toMatchObject({ leaked: [] });
      expect(r.intent).not.toContain("~");
    }
  }, 60_000);

  it("what a Routed may say about its intent", () => {
    expect(publishedIntent("semantic:treatment~chemotherapy")).toBe("semantic:treatment");
    expect(publishedIntent("fallback:related:interview~employ")).toBe("fallback:related:interview");
    expect(publishedIntent("keyword:budget")).toBe("keyword:budget");
    expect(publishedIntent("lexical:pays")).toBe("lexical:pays");
    expect(publishedIntent("llm:the examples say chemotherapy")).toBe("llm");
    expect(publishedIntent("fallback:sentence")).toBe("fallback:sentence");
    expect(publishedIntent("learned")).toBe("learned");
    expect(publishedIntent("user_choice")).toBe("user_choice");
    expect(publishedIntent("custom classifier: anything")).toBe("custom classifier");
  });
});
