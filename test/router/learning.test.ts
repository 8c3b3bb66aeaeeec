import { create } from "@bufbuild/protobuf";
import { jetstream } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { publishEvent } from "../../src/core/publish.js";
import { TopicType } from "../../src/core/subjects.js";
import { ClarifyAnswerSchema } from "../../src/gen/switchboard/v1/routing_pb.js";
import { RouterAgentType } from "../../src/router/router-agent.js";
import type { RoutingProfile } from "../../src/router/classifier.js";
import { HybridClassifier } from "../../src/router/hybrid/index.js";
import { LearnedExamples, LearnedSource, learnedExampleId, listLearned, openRoutingBucket, recordLearned } from "../../src/router/learned-examples.js";
import { openChat } from "../helpers/chat.js";
import { runCliToEnd } from "../helpers/cli.js";
import { eventually, subjects, testLogger, withHostedSystem, type TestSystem } from "../helpers/system.js";
import { twinDesks } from "../helpers/twin-desks.js";

const REQUEST = "Has the supplier invoice been paid?";

interface LearnedJson {
  readonly users: readonly string[];
  readonly id: string;
  readonly agentType: string;
  readonly text: string;
  readonly source: string;
  readonly detail: string;
  readonly learnedAt: string;
}

async function learned(sys: TestSystem, ...args: string[]): Promise<LearnedJson[]> {
  const listed = await runCliToEnd(["admin", "routing", ...args, "--json", "--nats", sys.url]);
  expect(listed.stderr).toBe("");
  expect(listed.code).toBe(0);
  return JSON.parse(listed.stdout) as LearnedJson[];
}

describe("routing learned from use", () => {
  let sys: TestSystem;
  withHostedSystem((s) => (sys = s));

  it("routes a request straight to the agent a user chose for it, in a new session on another worker; everyone's once two users chose it, until an operator forgets it", async () => {
    const first = await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker(twinDesks());
    const alice = await openChat(sys, "alice");
    expect((await alice.send(REQUEST)).map((e) => e.event)).toEqual(["clarify"]);
    expect((await alice.answerClarification("desk-b"))[0]).toMatchObject({ event: "routed", agent: "desk-b", intent: "user_choice" });

    const kept = await eventually(async () => {
      const list = await learned(sys);
      return list.length > 0 ? list : undefined;
    });
    expect(kept).toEqual([expect.objectContaining({ agentType: "desk-b", text: REQUEST, source: "LEARNED_SOURCE_CLARIFY_ANSWER", detail: "the user chose it when asked", users: ["alice"] })]);
    expect(Date.parse(kept[0]!.learnedAt)).toBeGreaterThan(Date.now() - 60_000);

    // Another router, in another worker, takes over; the same user opens a new session.
    await sys.startWorker(["router", "user_proxy"]);
    await first.close();
    const again = await openChat(sys, "alice");
    const direct = await again.send(REQUEST);
    expect(direct.map((e) => e.event)).toEqual(["routed", "reply"]);
    expect(direct[0]).toMatchObject({ agent: "desk-b", intent: "learned" });

    // One user's answers route only that user's requests; a second user's agreement shares them.
    const bob = await openChat(sys, "bob");
    expect((await bob.send(REQUEST)).map((e) => e.event)).toEqual(["clarify"]);
    expect((await bob.answerClarification("desk-b"))[0]).toMatchObject({ event: "routed", agent: "desk-b", intent: "user_choice" });
    await eventually(async () => (await learned(sys))[0]?.users.length === 2, 5_000, "bob's answer learned");
    // The same request in other words of case and spacing is the same request.
    const carol = await openChat(sys, "carol");
    expect((await carol.send("  has the SUPPLIER invoice been paid  "))[0]).toMatchObject({ agent: "desk-b", intent: "learned" });

    const forgot = await runCliToEnd(["admin", "routing", "forget", "desk-b", "--nats", sys.url]);
    expect(forgot).toMatchObject({ code: 0, stdout: "forgot 1 learned example" });
    expect(await learned(sys)).toEqual([]);
    // The routers follow the bucket: the request is a question again.
    await eventually(async () => {
      const dave = await openChat(sys, `dave${Date.now()}`);
      const events = await dave.send(REQUEST);
      await dave.close();
      return events[0]?.event === "clarify";
    }, 10_000, "the forgotten request to be asked about again");
  });

  it("lets an operator seed an example, lists it by type, and forgets it by id", async () => {
    await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker(twinDesks());
    const added = await runCliToEnd(["admin", "routing", "add", "desk-a", "Who approves supplier payments over 10k?", "--nats", sys.url]);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^learned [0-9a-f]{16}: "Who approves supplier payments over 10k\?" is for desk-a$/);
    const [seeded] = await learned(sys, "desk-a");
    expect(seeded).toMatchObject({ agentType: "desk-a", source: "LEARNED_SOURCE_OPERATOR" });
    expect(await learned(sys, "desk-b")).toEqual([]);

    const table = await runCliToEnd(["admin", "routing", "--nats", sys.url]);
    expect(table.stdout).toMatch(/ID\s+TYPE\s+LEARNED\s+USERS\s+WHY\s+TEXT/);
    expect(table.stdout).toContain("operator: added by an operator");

    await eventually(async () => {
      const chat = await openChat(sys, `erin${Date.now()}`);
      const events = await chat.send("who approves supplier payments over 10k");
      await chat.close();
      return events[0]?.event === "routed" && events[0].agent === "desk-a";
    }, 10_000, "the seeded example to route");

    // A type the router cannot route to is refused, with the ones it can.
    const unknown = await runCliToEnd(["admin", "routing", "add", "desk-z", "Who approves supplier payments over 10k?", "--nats", sys.url]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no routable agent type "desk-z" in the registry \(routable types: desk-a, desk-b\)/);
    const router = await runCliToEnd(["admin", "routing", "add", "router", "hello", "--nats", sys.url]);
    expect(router.code).toBe(2);

    // The same request for another type has the same id; TYPE.ID removes one record.
    expect((await runCliToEnd(["admin", "routing", "add", "desk-b", "Who approves supplier payments over 10k?", "--nats", sys.url])).code).toBe(0);
    const one = await runCliToEnd(["admin", "routing", "forget", `desk-b.${seeded!.id}`, "--nats", sys.url]);
    expect(one).toMatchObject({ code: 0, stdout: "forgot 1 learned example" });
    expect((await learned(sys)).map((e) => e.agentType)).toEqual(["desk-a"]);

    const forgot = await runCliToEnd(["admin", "routing", "forget", seeded!.id, "--nats", sys.url]);
    expect(forgot.code).toBe(0);
    expect(await learned(sys, "desk-a")).toEqual([]);
    const again = await runCliToEnd(["admin", "routing", "forget", seeded!.id, "--nats", sys.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no learned example of type or id/);
  });

  it("takes back what one user taught: their own examples go, shared ones lose their vote and stop routing others' requests", async () => {
    await sys.startWorker(["router", "user_proxy"]);
    await sys.startWorker(twinDesks());
    const kv = await openRoutingBucket(await sys.connect(), subjects);
    await recordLearned(kv, subjects, { agentType: "desk-b", text: REQUEST, source: LearnedSource.CLARIFY_ANSWER, detail: "test", users: ["alice", "bob"] });
    await recordLearned(kv, subjects, { agentType: "desk-a", text: "Is invoice 7 paid?", source: LearnedSource.CLARIFY_ANSWER, detail: "test", users: ["alice"] });
    await recordLearned(kv, subjects, { agentType: "desk-a", text: "Is invoice 8 paid?", source: LearnedSource.CLARIFY_ANSWER, detail: "test", users: ["bob"] });
    await eventually(async () => {
      const carol = await openChat(sys, `carol${Date.now()}`);
      const events = await carol.send(REQUEST);
      await carol.close();
      return events[0]?.event === "routed" && events[0].agent === "desk-b";
    }, 10_000, "the shared example to route everyone's request");

    expect((await learned(sys, "--user", "alice")).map((e) => e.text).sort()).toEqual([REQUEST, "Is invoice 7 paid?"]);
    const forgot = await runCliToEnd(["admin", "routing", "forget", "--user", "alice", "--nats", sys.url]);
    expect(forgot).toMatchObject({ code: 0, stdout: "forgot 1 learned example only alice taught; took alice's vote from 1 learned example others taught too" });
    expect((await learned(sys)).map((e) => [e.text, e.users]).sort()).toEqual([
      ["Has the supplier invoice been paid?", ["bob"]],
      ["Is invoice 8 paid?", ["bob"]],
    ]);
    // With one teacher left, the example routes only that teacher's requests.
    await eventually(async () => {
      const carol = await openChat(sys, `carol${Date.now()}`);
      const events = await carol.send(REQUEST);
      await carol.close();
      return events[0]?.event === "clarify";
    }, 10_000, "the request to be asked about again");
    const bob = await openChat(sys, "bob");
    expect((await bob.send(REQUEST))[0]).toMatchObject({ event: "routed", agent: "desk-b", intent: "learned" });

    const none = await runCliToEnd(["admin", "routing", "forget", "--user", "alice", "--nats", sys.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no learned example was taught by alice/);
    const misuse = await runCliToEnd(["admin", "sessions", "--user", "alice", "--nats", sys.url]);
    expect(misuse.code).toBe(2);
  });

  it("learns where a request an agent handed back went", async () => {
    await sys.startWorker(["router", "user_proxy", "hr", "finance"]);
    const chat = await openChat(sys);
    expect((await chat.send("I need help with my budget"))[0]).toMatchObject({ event: "routed", agent: "finance" });
    const handed = await chat.send("Actually, can HR tell me my remaining vacation days?");
    expect(handed[0]).toMatchObject({ event: "routed", agent: "hr", from: "finance" });
    const kept = await eventually(async () => {
      const list = await learned(sys, "hr");
      return list.length > 0 ? list : undefined;
    });
    expect(kept).toEqual([expect.objectContaining({ agentType: "hr", text: "Actually, can HR tell me my remaining vacation days?", source: "LEARNED_SOURCE_HANDOFF", detail: "handed back by finance" })]);
    // The message that first brought the session to finance was routed without help: nothing to learn.
    expect(await learned(sys, "finance")).toEqual([]);
  });

  it("learns a clarify answer only when the router offers that choice for the request, keeping the newest within the bound", async () => {
    await sys.startWorker([new RouterAgentType({ maxLearnedPerType: 1 }), ...builtinAgents(["user_proxy", "hr"]), ...twinDesks()]);
    const js = jetstream(await sys.connect("mallory"));
    const admin = await sys.hostClient();
    // Answers sent straight to the router, as any client can, to questions it never asked.
    const answer = async (session: string, text: string, agentType: string) => {
      const source = { user: "mallory", session };
      await publishEvent(js, subjects, create(ClarifyAnswerSchema, { sessionId: session, user: "mallory", turnId: "t1", agentType, originalText: text }), { type: TopicType.Default, source }, { source: "test", id: `${session}-answer` });
      // The user's choice is honoured either way.
      await eventually(async () => (await admin.session(session))?.agentType === agentType, 5_000, `session ${session} routed to ${agentType}`);
    };
    await answer("s-forged", "Talk to HR please", "desk-a");
    // Two requests the twin desks fit equally (the second stays a tie after the first is learned).
    await answer("s-twin1", "Is invoice 1 paid?", "desk-b");
    await eventually(async () => (await learned(sys)).length === 1, 5_000, "the first answer learned");
    await answer("s-twin2", "Supplier invoice question", "desk-b");
    const kept = await eventually(async () => {
      const list = await learned(sys);
      return list.length === 1 && list[0]?.text === "Supplier invoice question" ? list : undefined;
    }, 5_000, "the newest answer kept alone");
    expect(kept.map((e) => [e.agentType, e.text])).toEqual([["desk-b", "Supplier invoice question"]]);
  });

  it("keeps an operator's examples when users' answers fill the bound, and does not turn them into learned ones", async () => {
    await sys.startWorker([new RouterAgentType({ maxLearnedPerType: 1 }), ...builtinAgents(["user_proxy"]), ...twinDesks()]);
    const js = jetstream(await sys.connect("mallory"));
    const admin = await sys.hostClient();
    const seeded = await runCliToEnd(["admin", "routing", "add", "desk-b", "Where is the stapler cupboard?", "--nats", sys.url]);
    expect(seeded.code).toBe(0);
    const answer = async (session: string, text: string) => {
      const source = { user: "mallory", session };
      await publishEvent(js, subjects, create(ClarifyAnswerSchema, { sessionId: session, user: "mallory", turnId: "t1", agentType: "desk-b", originalText: text }), { type: TopicType.Default, source }, { source: "test", id: `${session}-answer` });
      await eventually(async () => (await admin.session(session))?.agentType === "desk-b", 5_000, `session ${session} routed to desk-b`);
    };
    // Requests the twin desks fit equally, so the router offers desk-b and learns the answers.
    await answer("s-twin1", "Is invoice 1 paid?");
    await answer("s-twin2", "Is invoice 2 paid?");
    await answer("s-twin3", "Is invoice 3 paid?");
    const kept = await eventually(async () => {
      const list = await learned(sys, "desk-b");
      return list.some((e) => e.text === "Is invoice 3 paid?") ? list : undefined;
    }, 5_000, "the newest answer learned");
    expect(kept.map((e) => [e.text, e.source]).sort()).toEqual([
      ["Is invoice 3 paid?", "LEARNED_SOURCE_CLARIFY_ANSWER"],
      ["Where is the stapler cupboard?", "LEARNED_SOURCE_OPERATOR"],
    ]);
  });

  it("lets an operator's example decide where its request goes, and does not learn that request again", async () => {
    const nc = await sys.connect();
    const kv = await openRoutingBucket(nc, subjects);
    const text = "Where is the stapler cupboard?";
    // Two users taught it for desk-b before an operator said it is for desk-a.
    await recordLearned(kv, subjects, { agentType: "desk-b", text, source: LearnedSource.CLARIFY_ANSWER, detail: "test", users: ["u1", "u2"] });
    await recordLearned(kv, subjects, { agentType: "desk-a", text, source: LearnedSource.OPERATOR, detail: "added by an operator" });
    const examples = new LearnedExamples(nc, subjects, testLogger(), () => {}, { maxPerType: 1 });
    await examples.start();
    try {
      expect(examples.typesFor(text, "u1")).toEqual(["desk-a"]);
      expect(examples.typesFor(text, "u9")).toEqual(["desk-a"]);
      await examples.record("desk-a", "where is the stapler cupboard", LearnedSource.HANDOFF, "handed back by desk-c", "u3");
      await examples.record("desk-c", text, LearnedSource.CLARIFY_ANSWER, "the user chose it when asked", "u3");
      await examples.record("desk-a", "Where are the spare monitors?", LearnedSource.HANDOFF, "handed back by desk-b", "u3");
      const list = await eventually(async () => {
        const all = await listLearned(kv, subjects, "desk-a");
        return all.length === 2 ? all : undefined;
      }, 5_000, "the hand-off learned beside the operator's example");
      expect(list.map((e) => [e.text, e.source]).sort()).toEqual([
        ["Where are the spare monitors?", LearnedSource.HANDOFF],
        [text, LearnedSource.OPERATOR],
      ]);
      expect(await listLearned(kv, subjects, "desk-c")).toEqual([]);
    } finally {
      await examples.close();
    }
  });

  it("routes by one user's example only that user's requests, and pushes out unconfirmed examples first", async () => {
    const nc = await sys.connect();
    const kv = await openRoutingBucket(nc, subjects);
    const examples = new LearnedExamples(nc, subjects, testLogger(), () => {}, { maxPerType: 2 });
    await examples.start();
    try {
      // Each answer waits for the last to come back through the bucket, as answers seconds apart do.
      const seen = (text: string, user: string) => eventually(async () => examples.typesFor(text, user).length === 1, 5_000, `"${text}" seen`);
      for (const user of ["alice", "bob"]) {
        await examples.record("desk-a", "Who signs off the courier invoice?", LearnedSource.CLARIFY_ANSWER, "test", user);
        await seen("Who signs off the courier invoice?", user);
      }
      await examples.record("desk-b", "Is the courier invoice paid?", LearnedSource.CLARIFY_ANSWER, "test", "mallory");
      await seen("Is the courier invoice paid?", "mallory");
      expect(examples.typesFor("is the courier invoice paid", "alice")).toEqual([]);
      expect(examples.typesFor("Who signs off the courier invoice?", "carol")).toEqual(["desk-a"]);
      expect(examples.augment([{ type: "desk-a", description: "", keywords: [], examples: [] }, { type: "desk-b", description: "", keywords: [], examples: [] }]).map((p) => p.examples)).toEqual([
        ["Who signs off the courier invoice?"],
        [],
      ]);
      // Many answers from one user push out only other unconfirmed examples.
      for (let n = 1; n <= 3; n++) {
        await examples.record("desk-a", `courier question number ${n}`, LearnedSource.HANDOFF, "test", "mallory");
        await seen(`courier question number ${n}`, "mallory");
      }
      const kept = await eventually(async () => {
        const all = await listLearned(kv, subjects, "desk-a");
        return all.some((e) => e.text === "courier question number 3") ? all : undefined;
      }, 5_000, "the newest of mallory's examples");
      expect(kept.map((e) => e.text).sort()).toEqual(["Who signs off the courier invoice?", "courier question number 3"]);
    } finally {
      await examples.close();
    }
  });

  it("keeps at most ten unconfirmed examples of one user per type, so a user's flood pushes out only their own", async () => {
    const nc = await sys.connect();
    const kv = await openRoutingBucket(nc, subjects);
    const examples = new LearnedExamples(nc, subjects, testLogger(), () => {}, { maxPerType: 100 });
    await examples.start();
    try {
      const seen = (text: string, user: string) => eventually(async () => examples.typesFor(text, user).length === 1, 5_000, `"${text}" seen`);
      await examples.record("desk-a", "Who signs off the courier invoice?", LearnedSource.CLARIFY_ANSWER, "test", "alice");
      await seen("Who signs off the courier invoice?", "alice");
      for (let n = 1; n <= 12; n++) {
        await examples.record("desk-a", `courier question number ${n}`, LearnedSource.HANDOFF, "test", "mallory");
        await seen(`courier question number ${n}`, "mallory");
      }
      const kept = await eventually(async () => {
        const all = await listLearned(kv, subjects, "desk-a");
        return all.length === 11 ? all : undefined;
      }, 5_000, "mallory's oldest pushed out");
      expect(kept.filter((e) => e.users.includes("mallory")).map((e) => e.text)).toEqual(Array.from({ length: 10 }, (_, i) => `courier question number ${12 - i}`));
      expect(kept.some((e) => e.text === "Who signs off the courier invoice?")).toBe(true);
    } finally {
      await examples.close();
    }
  });

  it("spaces rebuilds for learned examples at least as far apart as the last one took", async () => {
    // A classifier whose rebuild takes 1.5 s once learned examples are in, as a large index does.
    const rebuilds: { start: number; end: number }[] = [];
    const classifier = new (class extends HybridClassifier {
      override setProfiles(profiles: readonly RoutingProfile[]): void {
        super.setProfiles(profiles);
        if (!profiles.some((p) => p.examples.some((e) => e.startsWith("slow example")))) return;
        const start = performance.now();
        while (performance.now() - start < 1_500);
        rebuilds.push({ start, end: performance.now() });
      }
    })();
    await sys.startWorker([new RouterAgentType({ classifier }), ...twinDesks()]);
    const kv = await openRoutingBucket(await sys.connect(), subjects);
    for (let n = 1; n <= 3; n++) {
      await recordLearned(kv, subjects, { agentType: "desk-a", text: `slow example ${n}`, source: LearnedSource.OPERATOR, detail: "test" });
      await new Promise((r) => setTimeout(r, 200));
    }
    await eventually(() => rebuilds.length >= 2, 15_000, "two rebuilds");
    expect(rebuilds[1]!.start - rebuilds[0]!.end).toBeGreaterThanOrEqual(1_400);
  });

  it("keeps both users' votes when two routers record them at the same moment", async () => {
    const nc = await sys.connect();
    const kv = await openRoutingBucket(nc, subjects);
    const routers = [new LearnedExamples(nc, subjects, testLogger(), () => {}), new LearnedExamples(await sys.connect(), subjects, testLogger(), () => {})];
    await Promise.all(routers.map((r) => r.start()));
    try {
      for (let n = 1; n <= 5; n++) {
        const text = `Who approves courier invoice number ${n}?`;
        await Promise.all(routers.map((r, i) => r.record("desk-a", text, LearnedSource.CLARIFY_ANSWER, "test", `user${i}`)));
        const [record] = await listLearned(kv, subjects, "desk-a").then((all) => all.filter((e) => e.text === text));
        expect([...(record?.users ?? [])].sort(), text).toEqual(["user0", "user1"]);
      }
    } finally {
      await Promise.all(routers.map((r) => r.close()));
    }
  });

  it("keeps each request once per agent type, the newest ones, within the bound", async () => {
    const kv = await openRoutingBucket(await sys.connect(), subjects);
    const learn = (agentType: string, text: string) => recordLearned(kv, subjects, { agentType, text, source: LearnedSource.OPERATOR, detail: "test" }, 3);
    for (const n of [1, 2, 3, 4]) await learn("desk-a", `request number ${n}`);
    // The same request, differently cased and spaced, refreshes its record instead of adding one.
    await learn("desk-a", "  Request   number 2!");
    await learn("desk-b", "request number 1");
    expect((await listLearned(kv, subjects, "desk-a")).map((e) => e.text)).toEqual(["Request   number 2!", "request number 4", "request number 3"]);
    expect(await listLearned(kv, subjects, "desk-b")).toEqual([expect.objectContaining({ id: learnedExampleId("request number 1") })]);
    expect(await learn("desk-a", "x".repeat(501))).toBeUndefined();
    expect(await learn("desk-a", "   ")).toBeUndefined();
  });
});
