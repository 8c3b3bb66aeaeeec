import { describe, expect, it } from "vitest";
import { MAX_HELD_PARTS, remainderAfterStream, ReplyAssembler } from "../../src/cli/reply-deltas.js";

const part = (sequence: number, text: string, turnId = "t-1") => ({ turnId, sequence, text });

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
