import { describe, expect, it } from "vitest";
import { MAX_HELD_PARTS, remainderAfterStream, ReplyAssembler } from "../../src/cli/reply-deltas.js";

const part = (sequence: number, text: string, turnId = "t-1", attempt = 1) => ({ turnId, sequence, text, attempt });

describe("putting reply deltas back in order", () => {
  it("releases parts in sequence order, holding early ones until the gap closes", () => {
    const a = new ReplyAssembler();
    expect(a.accept(part(2, "b"))).toBe("");
    expect(a.accept(part(3, "c"))).toBe("");
    expect(a.accept(part(1, "a"))).toBe("abc");
    expect(a.accept(part(4, "d"))).toBe("d");
    expect(a.text).toBe("abcd");
  });

  it("drops duplicates, released or held", () => {
    const a = new ReplyAssembler();
    expect(a.accept(part(1, "a"))).toBe("a");
    expect(a.accept(part(1, "a"))).toBe("");
    expect(a.accept(part(3, "c"))).toBe("");
    expect(a.accept(part(3, "c"))).toBe("");
    expect(a.accept(part(2, "b"))).toBe("bc");
    expect(a.text).toBe("abc");
  });

  it("stops at a lost part and gives up the turn once too much waits behind it", () => {
    const a = new ReplyAssembler();
    expect(a.accept(part(1, "a"))).toBe("a");
    for (let s = 3; s <= MAX_HELD_PARTS + 3; s++) expect(a.accept(part(s, "x"))).toBe("");
    // The lost part arriving after all changes nothing: the final reply will tell the rest.
    expect(a.accept(part(2, "b"))).toBe("");
    expect(a.text).toBe("a");
  });

  it("starts over for a new turn", () => {
    const a = new ReplyAssembler();
    a.accept(part(1, "old"));
    expect(a.accept(part(1, "new", "t-2"))).toBe("new");
    expect(a.text).toBe("new");
  });

  it("starts over for a later attempt of the same turn, and drops what the earlier one still sends", () => {
    const a = new ReplyAssembler();
    expect(a.accept(part(1, "first "))).toBe("first ");
    expect(a.accept(part(2, "try"))).toBe("try");
    expect(a.accept(part(1, "second ", "t-1", 2))).toBe("second ");
    expect(a.attempt).toBe(2);
    // A late part of the first attempt, even one with the next sequence number, is not this one's.
    expect(a.accept(part(2, "stale", "t-1", 1))).toBe("");
    expect(a.accept(part(2, "try", "t-1", 2))).toBe("try");
    expect(a.text).toBe("second try");
  });

  it("reads attempt 0, from agents that do not set it, as the first attempt", () => {
    const a = new ReplyAssembler();
    expect(a.accept(part(1, "a", "t-1", 0))).toBe("a");
    expect(a.accept(part(2, "b", "t-1", 1))).toBe("b");
    expect(a.attempt).toBe(1);
  });

  it("ignores sequence numbers that cannot be part of a turn", () => {
    const a = new ReplyAssembler();
    expect(a.accept(part(0, "zero"))).toBe("");
    expect(a.accept(part(1.5, "half"))).toBe("");
    expect(a.accept(part(1, "one"))).toBe("one");
  });
});

describe("what a final reply adds to a streamed one", () => {
  it("is the rest when the stream was the reply's beginning", () => {
    expect(remainderAfterStream("Hello, wor", "Hello, world")).toEqual({ text: "ld", restarted: false });
    expect(remainderAfterStream("Hello", "Hello")).toEqual({ text: "", restarted: false });
  });

  it("is the whole reply when the stream diverged from it", () => {
    expect(remainderAfterStream("Hello, wrld", "Hello, world")).toEqual({ text: "Hello, world", restarted: true });
  });
});
