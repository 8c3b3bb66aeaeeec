import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { USER_PUBLISHABLE, userPublishable } from "../../src/core/user-input.js";
import { AgentReplySchema, UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { SessionRecordSchema, type SessionRecord } from "../../src/gen/switchboard/v1/registry_pb.js";
import { applyEvent, MAX_ENTRY_CHARS, MAX_TRANSCRIPT_BYTES } from "../../src/host/session-state.js";

const source = { user: "mallory", session: "s1" };
const at = (seq: number, type = "default") => ({ seq: BigInt(seq), topic: { type, source }, atMs: 1_000 + seq });
const said = (turn: string, text: string) => create(UserMessageSchema, { sessionId: "s1", user: "mallory", turnId: turn, text });

describe("session records under the server's limits", () => {
  it("cuts over-long transcript text and says how much was left out", () => {
    const record = applyEvent(undefined, said("t1", "x".repeat(600_000)), at(1))?.record;
    const text = record?.transcript[0]?.text ?? "";
    expect(text.startsWith("x".repeat(MAX_ENTRY_CHARS))).toBe(true);
    expect(text.slice(MAX_ENTRY_CHARS)).toBe(" … [584000 more characters not kept]");
  });

  it("keeps a record far below 1 MB however many long multi-byte messages a session gets", () => {
    let record: SessionRecord | undefined;
    for (let i = 1; i <= 200; i++) {
      record = applyEvent(record, said(`t${i}`, "€".repeat(20_000)), at(2 * i))?.record ?? record;
      record = applyEvent(record, create(AgentReplySchema, { sessionId: "s1", user: "mallory", turnId: `t${i}`, content: "\u{1F600}".repeat(20_000) }), at(2 * i + 1, "response"))?.record ?? record;
    }
    const bytes = (record?.transcript ?? []).reduce((n, e) => n + Buffer.byteLength(e.text), 0);
    expect(bytes).toBeLessThanOrEqual(MAX_TRANSCRIPT_BYTES);
    expect(toBinary(SessionRecordSchema, record!).length).toBeLessThan(512 * 1024);
    // The newest entry is the one kept whole.
    expect(record?.transcript.at(-1)?.turnId).toBe("t200");
    expect(record?.turns).toBe(200);
  });
});

describe("the declared list of types users can publish", () => {
  it("names UserMessage, ClarifyAnswer and Handoff, each where it may be sent, and nothing else", () => {
    expect(USER_PUBLISHABLE.map((d) => [d.typeName, d.topics])).toEqual([
      ["switchboard.v1.UserMessage", ["default", "agent"]],
      ["switchboard.v1.ClarifyAnswer", ["default"]],
      ["switchboard.v1.Handoff", ["default"]],
    ]);
    expect(userPublishable("switchboard.v1.Handoff", "finance")).toBeUndefined();
    expect(userPublishable("switchboard.v1.Routed", "default")).toBeUndefined();
    expect(userPublishable("switchboard.v1.UserMessage", "finance")?.typeName).toBe("switchboard.v1.UserMessage");
  });
});
