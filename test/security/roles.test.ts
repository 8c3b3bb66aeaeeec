import { create, isMessage } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, nkeyAuthenticator, nkeys, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinAgents } from "../../src/agents/builtin.js";
import { encodeEvent } from "../../src/core/codec.js";
import { AuthenticationFailedError } from "../../src/core/connection.js";
import { PermissionDeniedError } from "../../src/core/errors.js";
import { publishEvent } from "../../src/core/publish.js";
import { Role } from "../../src/core/roles.js";
import { HostVerb } from "../../src/core/subjects.js";
import { AgentReplySchema, ErrorEventSchema, UserMessageSchema, type ErrorEvent } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { RegisterWorkerRequestSchema } from "../../src/gen/switchboard/v1/registry_pb.js";
import { HostClient } from "../../src/host/client.js";
import { RegistryView } from "../../src/host/registry-view.js";
import type { Worker } from "../../src/worker/worker.js";
import { collectRefusals, expectDenied, expectSubscribeDenied, subscribeOutcome } from "../helpers/permissions.js";
import { ProbeAgentType } from "../helpers/probe-agent.js";
import { watchResponses } from "../helpers/responses.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { eventually, subjects, testLogger } from "../helpers/system.js";
import { twinDesks } from "../helpers/twin-desks.js";

/**
 * Every role against the shipped nats.conf with generated credentials: each does its real job,
 * and each operation outside its role is attempted and refused by the server.
 */
describe("least privilege on the bus", () => {
  const logger = testLogger();
  let server: SecureTestServer;
  let worker: Worker;
  let probe: ProbeAgentType;

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice", "bob"] });
    await server.startHost();
    probe = new ProbeAgentType("probe", { failOn: "poison" });
    const consumer = { maxDeliver: 2, ackWaitMs: 1_000 };
    worker = await server.startWorker([...builtinAgents(["router", "user_proxy", "hr", "finance"]), ...twinDesks()], { consumer });
    await server.startWorker([probe], { consumer });
  });

  afterAll(async () => {
    await server?.stop();
  });

  describe("each role does its job with its own credentials", () => {
    it("a chat user converses: routing, replies, a hand-off, a clarification and the end", async () => {
      const chat = await server.chatAs("alice");
      expect((await chat.send("I need help with my budget")).map((e) => e.event)).toEqual(["routed", "reply"]);
      const handedOver = await chat.send("Actually, can HR tell me my remaining vacation days?");
      expect(handedOver[0]).toMatchObject({ event: "routed", agent: "hr", from: "finance" });
      expect((await chat.send("thanks, END")).at(-1)).toMatchObject({ event: "ended", agent: "hr" });
      const [clarify] = await chat.send("Where is the invoice?");
      expect(clarify).toMatchObject({ event: "clarify" });
      const chosen = await chat.answerClarification("1");
      expect(chosen.map((e) => e.event)).toEqual(["routed", "reply"]);
      await chat.close();
    });

    it("the admin reads agents, workers, sessions and dead letters, and follows the registry", async () => {
      const admin = new HostClient(await server.open(Role.Admin), subjects);
      expect((await admin.agents()).map((a) => a.spec?.type)).toEqual(expect.arrayContaining(["router", "hr", "finance", "probe"]));
      expect(await admin.workers()).toHaveLength(2);
      await eventually(async () => (await admin.sessions()).some((s) => s.user === "alice"), 5_000, "alice's session recorded");
      // None yet (the next test makes one, and reads it back with these credentials).
      expect(await admin.deadLetters()).toEqual([]);
      const view = new RegistryView(await server.open(Role.Admin), subjects, logger);
      await view.start();
      expect(view.profiles().map((p) => p.type)).toEqual(expect.arrayContaining(["finance", "hr"]));
      await view.close();
    });

    it("workers call each other directly and dead-letter a failing message; the host replays it", async () => {
      const reply = await worker.runtime.send(create(UserMessageSchema, { sessionId: "s1", user: "alice", turnId: "t1", text: "hello" }), { type: "probe", key: "alice.s1" }, { timeoutMs: 5_000 });
      expect(isMessage(reply, AgentReplySchema) && reply.content).toBe("echo: hello");

      await worker.runtime.publish(create(UserMessageSchema, { sessionId: "s2", user: "alice", turnId: "t2", text: "poison" }), { type: "probe", source: { user: "alice", session: "s2" } });
      const admin = new HostClient(await server.open(Role.Admin), subjects);
      const [letter] = await eventually(async () => {
        const letters = await admin.deadLetters();
        return letters.length > 0 ? letters : undefined;
      }, 10_000, "a dead letter");
      probe.failOn = undefined;
      // Replaying writes into a conversation: the admin role may not, the host's credentials may.
      await expect(admin.replayDeadLetter(Number(letter?.seq))).rejects.toBeInstanceOf(PermissionDeniedError);
      await new HostClient(await server.open(Role.Host), subjects).replayDeadLetter(Number(letter?.seq));
      await eventually(() => probe.handled.some((h) => h.key === "alice.s2"), 5_000, "replayed message handled");
    });
  });

  describe("a chat user is confined to its own sessions", () => {
    let alice: NatsConnection;
    beforeAll(async () => {
      alice = await server.open(Role.Client, "alice");
    });

    const userMessage = (user: string, session: string, text = "I need help with my budget") => create(UserMessageSchema, { sessionId: session, user, turnId: `t-${session}`, text });

    it("cannot publish into another user's session, nor forge answers into its own", async () => {
      const js = jetstream(alice);
      for (const topic of [
        { type: "default", source: { user: "bob", session: "s1" } },
        { type: "finance", source: { user: "bob", session: "s1" } },
      ]) {
        const err = await expectDenied(publishEvent(js, subjects, userMessage(topic.source.user, "s1"), topic, { source: "test", retryForMs: 0 }));
        expect(err).toBeInstanceOf(PermissionDeniedError);
        expect((err as Error).message).toMatch(/permission denied publishing to sb\.topic\..*: .*may publish only into its own sessions/);
      }
      await expectDenied(alice.request("sb.topic.default.bob.s1", new Uint8Array(1), { timeout: 2_000 }));
      // Its own topics are moved inside its account before the check, so the server names them so.
      const refusals = collectRefusals(alice);
      for (const type of ["response", "user_proxy"]) {
        const forged = encodeEvent(UserMessageSchema, userMessage("alice", "s1"), { source: "forged" });
        alice.publish(subjects.topic({ type, source: { user: "alice", session: "s-forged" } }), forged.data, { headers: forged.headers });
      }
      await eventually(() => refusals.length >= 2, 5_000, "both refused");
      expect(refusals).toEqual([expect.stringContaining('Publish to "sb.inbound.response.alice.s-forged"'), expect.stringContaining('Publish to "sb.inbound.user_proxy.alice.s-forged"')]);
      const { state } = await (await jetstreamManager(await server.open(Role.Host))).streams.info(subjects.eventStream, { subjects_filter: "sb.topic.*.alice.s-forged" });
      expect(state.subjects ?? {}).toEqual({});
    });

    it("cannot read another user's replies, every reply, or anyone's inbox", async () => {
      expect(await subscribeOutcome(alice, subjects.userTopics("response", "alice"))).toBeUndefined();
      for (const subject of ["sb.topic.response.bob.*", "sb.topic.response.>", "sb.topic.>", "sb.topic.default.alice.*", ">", "_INBOX.>", "_INBOX_u_bob.>", "_INBOX_worker.>", "_INBOX_host.>", "sb.rpc.>", "sb.host.>", "$JS.>"]) {
        await expectSubscribeDenied(alice, subject);
      }
    });

    it("cannot reach the registry, sessions or JetStream beyond publishing and its own last answer", async () => {
      for (const bucket of [subjects.sessionsBucket, subjects.agentsBucket, subjects.agentStateBucket]) {
        await expectDenied(new Kvm(alice).open(bucket).then((kv) => kv.get("s1")));
        await expectDenied(new Kvm(alice).open(bucket).then((kv) => kv.status()));
      }
      for (const api of [
        "$JS.API.INFO",
        `$JS.API.STREAM.INFO.${subjects.eventStream}`,
        `$JS.API.STREAM.MSG.GET.${subjects.eventStream}`,
        `$JS.API.DIRECT.GET.${subjects.eventStream}`,
        `$JS.API.DIRECT.GET.${subjects.eventStream}.sb.topic.response.bob.s1`,
        `$JS.API.DIRECT.GET.KV_${subjects.sessionsBucket}.$KV.${subjects.sessionsBucket}.s1`,
        `$JS.API.CONSUMER.CREATE.${subjects.eventStream}.spy.sb.topic.>`,
        `$JS.API.CONSUMER.DURABLE.CREATE.${subjects.eventStream}.spy`,
        `$JS.API.CONSUMER.MSG.NEXT.${subjects.eventStream}.router__default`,
        `$JS.API.STREAM.DELETE.${subjects.eventStream}`,
        `$JS.API.STREAM.PURGE.${subjects.eventStream}`,
        "$KV.sessions.s1",
      ]) {
        await expectDenied(alice.request(api, new Uint8Array(0), { timeout: 2_000 }));
      }
    });

    it("cannot register an agent type, query the admin API or call an agent directly", async () => {
      const hostClient = new HostClient(alice, subjects, 2_000);
      await expectDenied(hostClient.register(create(RegisterWorkerRequestSchema, { workerId: "evil" })));
      await expectDenied(hostClient.sessions());
      await expectDenied(alice.request(subjects.host(HostVerb.ListSessions), new Uint8Array(0), { timeout: 2_000 }));
      await expectDenied(alice.request(subjects.host(HostVerb.ReplayDeadLetter), new Uint8Array(0), { timeout: 2_000 }));
      await expectDenied(alice.request(subjects.rpc({ type: "hr", key: "alice.s1" }), new Uint8Array(0), { timeout: 2_000 }));
    });

    it("cannot smuggle another user's session into the body of its own message", async () => {
      const bobSees = await watchResponses(await server.open(Role.Client, "bob"), "bob");
      const aliceSees = await watchResponses(alice, "alice");
      const forged = encodeEvent(UserMessageSchema, userMessage("bob", "sbob"), { source: "forged" });
      await jetstream(alice).publish("sb.topic.default.alice.s-forge", forged.data, { headers: forged.headers });
      const rejection = await eventually(() => aliceSees.find((e) => isMessage(e.message, ErrorEventSchema)), 5_000, "alice told her message was dropped");
      expect((rejection.message as ErrorEvent).code).toBe("invalid_message");
      expect(rejection.session).toBe("s-forge");
      await new Promise((r) => setTimeout(r, 500));
      expect(bobSees).toEqual([]);
    });

    it("reads back the last answer of its own session straight from the stream", async () => {
      const chat = await server.chatAs("alice");
      await chat.send("I need help with my budget");
      const jsm = await jetstreamManager(alice, { checkAPI: false });
      const last = await jsm.direct.getMessage(subjects.eventStream, { last_by_subj: subjects.topic({ type: "response", source: { user: "alice", session: chat.sessionId } }) });
      expect(last?.subject).toBe(`sb.topic.response.alice.${chat.sessionId}`);
      await chat.close();
    });
  });

  describe("services hold only their own part", () => {
    it("a worker cannot delete consumers, write state it does not own, or act as host or admin", async () => {
      const nc = await server.open(Role.Worker);
      for (const api of [
        `$JS.API.CONSUMER.DELETE.${subjects.eventStream}.router__default`,
        `$JS.API.STREAM.CREATE.${subjects.eventStream}`,
        `$JS.API.STREAM.DELETE.${subjects.eventStream}`,
        `$JS.API.STREAM.MSG.GET.${subjects.eventStream}`,
        `$JS.API.STREAM.INFO.KV_${subjects.sessionsBucket}`,
        `$JS.API.DIRECT.GET.KV_${subjects.sessionsBucket}.$KV.${subjects.sessionsBucket}.s1`,
        `$KV.${subjects.sessionsBucket}.s1`,
        `$KV.${subjects.agentsBucket}.finance`,
        `$KV.${subjects.workersBucket}.w1`,
        subjects.host(HostVerb.ListSessions),
        subjects.host(HostVerb.ReplayDeadLetter),
      ]) {
        await expectDenied(nc.request(api, new Uint8Array(0), { timeout: 2_000 }));
      }
      await expectSubscribeDenied(nc, subjects.hostAll, subjects.hostQueue);
      await expectSubscribeDenied(nc, "_INBOX_host.>");
      await expectSubscribeDenied(nc, "sb.topic.>");
    });

    it("the admin only asks; it cannot publish events, read the buckets' contents or change anything", async () => {
      const nc = await server.open(Role.Admin);
      await expectDenied(publishEvent(jetstream(nc), subjects, create(UserMessageSchema, { sessionId: "s1", user: "alice", turnId: "t", text: "hi" }), { type: "default", source: { user: "alice", session: "s1" } }, { source: "admin", retryForMs: 0 }));
      for (const api of [
        subjects.host(HostVerb.Register),
        subjects.host(HostVerb.ReplayDeadLetter),
        "$JS.API.INFO",
        `$JS.API.STREAM.INFO.KV_${subjects.sessionsBucket}`,
        `$JS.API.DIRECT.GET.KV_${subjects.sessionsBucket}.$KV.${subjects.sessionsBucket}.s1`,
        `$KV.${subjects.agentsBucket}.finance`,
        `$JS.API.STREAM.MSG.GET.${subjects.deadLetterStream}`,
      ]) {
        await expectDenied(nc.request(api, new Uint8Array(0), { timeout: 2_000 }));
      }
      await expectSubscribeDenied(nc, "sb.topic.>");
    });

    it("the host cannot pull the workers' consumers or answer their direct calls", async () => {
      const nc = await server.open(Role.Host);
      await expectDenied(nc.request(`$JS.API.CONSUMER.MSG.NEXT.${subjects.eventStream}.router__default`, new Uint8Array(0), { timeout: 2_000 }));
      await expectDenied(nc.request(`$JS.API.CONSUMER.DELETE.${subjects.eventStream}.router__default`, new Uint8Array(0), { timeout: 2_000 }));
      await expectSubscribeDenied(nc, subjects.rpcAll, "sb-rpc-hr");
      await expectSubscribeDenied(nc, "_INBOX_worker.>");
    });
  });

  describe("connections without valid credentials", () => {
    it("are refused: none, an unknown key, or a chat user without credentials", async () => {
      await expectDenied(connect({ servers: server.url, timeout: 3_000 }));
      const stranger = nkeys.createUser();
      await expectDenied(connect({ servers: server.url, timeout: 3_000, authenticator: nkeyAuthenticator(stranger.getSeed()) }));
      const err = await server.connectAs(Role.Client, "mallory").then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AuthenticationFailedError);
      expect((err as Error).message).toMatch(/there are none for user "mallory".*switchboard users add mallory/);
    });
  });
});
