import { create } from "@bufbuild/protobuf";
import { headers } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { decodeEvent, encodeEvent } from "../../src/core/codec.js";
import { loadConfig } from "../../src/core/config.js";
import { ConfigError, DecodeError, ErrorCode, InvalidIdError } from "../../src/core/errors.js";
import { isValidToken, newId, validateToken } from "../../src/core/ids.js";
import { Subjects } from "../../src/core/subjects.js";
import { UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected an error");
}

describe("ids", () => {
  it("accepts letters, digits, '_' and '-' only", () => {
    expect(isValidToken("alice_01-x")).toBe(true);
    for (const bad of ["", "a.b", "a*", ">", "a b", "a\u0000", "é", "x".repeat(65)]) expect(isValidToken(bad)).toBe(false);
  });

  it("throws a typed error naming the kind of id", () => {
    expect(() => validateToken("user", "bob.smith")).toThrow(InvalidIdError);
    expect(() => validateToken("user", "bob.smith")).toThrow(/invalid user "bob.smith"/);
  });

  it("makes unique token-safe ids", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newId("s")));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(isValidToken(id)).toBe(true);
  });
});

describe("subjects", () => {
  const s = new Subjects("sb");

  it("names topics, rpc, host verbs, stream and buckets in one place", () => {
    expect(s.topic({ type: "finance", source: { user: "alice", session: "s1" } })).toBe("sb.topic.finance.alice.s1");
    expect(s.topicFilter("default")).toBe("sb.topic.default.>");
    expect(s.userTopics("response", "alice")).toBe("sb.topic.response.alice.*");
    expect(s.rpc({ type: "hr", key: "alice.s1" })).toBe("sb.rpc.hr.alice.s1");
    expect(s.host("admin.agents")).toBe("sb.host.admin.agents");
    expect(s.eventStream).toBe("SB_EVENTS");
    expect([s.agentsBucket, s.workersBucket, s.sessionsBucket]).toEqual(["agents", "workers", "sessions"]);
    expect(new Subjects("acme").agentsBucket).toBe("acme_agents");
  });

  it("refuses ids that would escape their token", () => {
    for (const user of ["a.b", "*", ">", "a b"]) {
      expect(() => s.topic({ type: "default", source: { user, session: "s1" } })).toThrow(InvalidIdError);
    }
    expect(() => s.rpc({ type: "hr", key: "a.b.c" })).toThrow(InvalidIdError);
    expect(() => new Subjects("a.b")).toThrow(ConfigError);
  });

  it("parses only well-formed topic subjects", () => {
    expect(s.parseTopic("sb.topic.hr.alice.s1")).toEqual({ type: "hr", source: { user: "alice", session: "s1" } });
    expect(s.parseTopic("sb.topic.hr.alice")).toBeUndefined();
    expect(s.parseTopic("sb.topic.hr.al@ice.s1")).toBeUndefined();
    expect(s.parseTopic("other.topic.hr.alice.s1")).toBeUndefined();
  });
});

describe("codec", () => {
  const msg = create(UserMessageSchema, { sessionId: "s1", user: "alice", turnId: "t1", text: "hello" });

  it("round-trips an event with CloudEvents headers and a protobuf body", () => {
    const event = encodeEvent(UserMessageSchema, msg, { source: "test", id: "e1" });
    expect(event.headers.get("ce-specversion")).toBe("1.0");
    expect(event.headers.get("ce-type")).toBe("switchboard.v1.UserMessage");
    expect(event.headers.get("ce-datacontenttype")).toBe("application/protobuf");
    expect(event.headers.get("Nats-Msg-Id")).toBe("e1");
    const decoded = decodeEvent(event);
    expect(decoded.attributes.id).toBe("e1");
    expect(decoded.message).toEqual(msg);
  });

  it("rejects a missing header, an unknown type and a malformed body with typed errors", () => {
    const event = encodeEvent(UserMessageSchema, msg, { source: "test" });
    expect(() => decodeEvent({ data: event.data })).toThrow(DecodeError);
    const unknown = headers();
    for (const [k, v] of event.headers) unknown.set(k, v[0] ?? "");
    unknown.set("ce-type", "evil.Type");
    expect(thrown(() => decodeEvent({ headers: unknown, data: event.data }))).toMatchObject({ code: ErrorCode.UnknownType });
    expect(thrown(() => decodeEvent({ headers: event.headers, data: new Uint8Array([0x0a, 0xff, 0xff]) }))).toMatchObject({ code: ErrorCode.InvalidMessage });
  });

  it("requires every CloudEvents header the protocol names, each failure with its own code", () => {
    const event = encodeEvent(UserMessageSchema, msg, { source: "switchboard/chat/alice" });
    const edited = (edit: (h: ReturnType<typeof headers>) => void): unknown => {
      const h = headers();
      for (const [k, v] of event.headers) h.set(k, v[0] ?? "");
      edit(h);
      return thrown(() => decodeEvent({ headers: h, data: event.data }));
    };
    expect(edited((h) => h.delete("ce-specversion"))).toMatchObject({ code: ErrorCode.InvalidSpecVersion });
    expect(edited((h) => h.set("ce-specversion", "0.3"))).toMatchObject({ code: ErrorCode.InvalidSpecVersion });
    expect(edited((h) => h.delete("ce-id"))).toMatchObject({ code: ErrorCode.InvalidEventId });
    expect(edited((h) => h.set("ce-id", "two words"))).toMatchObject({ code: ErrorCode.InvalidEventId });
    expect(edited((h) => h.delete("ce-source"))).toMatchObject({ code: ErrorCode.InvalidSource });
    expect(edited((h) => h.set("ce-source", "x".repeat(300)))).toMatchObject({ code: ErrorCode.InvalidSource });
    expect(edited((h) => h.delete("ce-type"))).toMatchObject({ code: ErrorCode.InvalidEventType });
    expect(edited((h) => h.set("ce-type", "switchboard.v1/UserMessage"))).toMatchObject({ code: ErrorCode.InvalidEventType });
    // A second value, which one reader could take and another ignore.
    expect(edited((h) => h.append("ce-type", "switchboard.v1.Routed"))).toMatchObject({ code: ErrorCode.InvalidEventType, message: expect.stringContaining("2 ce-type headers") });
    expect(edited((h) => h.append("ce-id", "other"))).toMatchObject({ code: ErrorCode.InvalidEventId });
    expect(edited((h) => h.delete("ce-time"))).toMatchObject({ code: ErrorCode.InvalidTime });
    expect(edited((h) => h.set("ce-time", "2026-13-45T99:00:00Z"))).toMatchObject({ code: ErrorCode.InvalidTime });
    expect(edited((h) => h.set("ce-time", "2026-01-01 12:00:00"))).toMatchObject({ code: ErrorCode.InvalidTime });
    expect(edited((h) => h.set("ce-datacontenttype", "application/json"))).toMatchObject({ code: ErrorCode.UnsupportedContentType });
    // What the protocol's example sends, with an offset instead of Z and no fraction, is accepted.
    const ok = headers();
    for (const [k, v] of event.headers) ok.set(k, v[0] ?? "");
    ok.set("ce-time", "2026-01-01T12:00:00+02:00");
    expect(decodeEvent({ headers: ok, data: event.data }).attributes.time).toBe("2026-01-01T12:00:00+02:00");
  });
});

describe("config", () => {
  it("takes flags over environment over defaults", () => {
    expect(loadConfig({}, {}).natsUrl).toBe("nats://127.0.0.1:4222");
    expect(loadConfig({}, { NATS_URL: "nats://a:1" }).natsUrl).toBe("nats://a:1");
    expect(loadConfig({ natsUrl: "nats://b:2" }, { NATS_URL: "nats://a:1" }).natsUrl).toBe("nats://b:2");
  });

  it("rejects bad numbers early", () => {
    expect(() => loadConfig({}, { SB_REPLY_TIMEOUT_MS: "soon" })).toThrow(ConfigError);
    expect(() => loadConfig({}, { SB_HEARTBEAT_MS: "5000", SB_WORKER_TTL_MS: "1000" })).toThrow(/longer than/);
  });
});
