/** One part of a reply in progress, as an agent published it. */
export interface DeltaPart {
  readonly turnId: string;
  /** 1 for the first part of a turn, then 2, 3, … */
  readonly sequence: number;
  readonly text: string;
  /** Which delivery of the user's message is being answered: 1, or more after a redelivery. */
  readonly attempt: number;
}

/** Parts held back waiting for a missing one; beyond this the turn's stream is given up. */
export const MAX_HELD_PARTS = 256;

/**
 * Puts the reply deltas of one turn back in order. Deltas travel over core NATS, so they may be
 * lost, duplicated or (across reconnects) reordered: a part is released only once every part
 * before it has been, duplicates are dropped, and a turn whose gap does not close within
 * {@link MAX_HELD_PARTS} later parts stops streaming. None of that loses text: the final reply
 * carries all of it. A later attempt (the turn redelivered to another worker, answering again
 * from part 1) replaces the earlier one; parts of an earlier attempt are dropped.
 */
export class ReplyAssembler {
  private turnId: string | undefined;
  private attemptValue = 1;
  private next = 1;
  private held = new Map<number, string>();
  private stalled = false;
  private textValue = "";

  /** The text released so far for the current turn. */
  get text(): string {
    return this.textValue;
  }

  /** The attempt whose parts are being assembled. */
  get attempt(): number {
    return this.attemptValue;
  }

  /** The text this part makes contiguous (possibly with held parts after it), or "" for none. */
  accept(part: DeltaPart): string {
    const attempt = Math.max(1, part.attempt);
    if (part.turnId !== this.turnId || attempt > this.attemptValue) this.reset(part.turnId, attempt);
    if (attempt < this.attemptValue) return "";
    if (this.stalled || part.sequence < this.next || this.held.has(part.sequence) || !Number.isInteger(part.sequence)) return "";
    if (part.sequence > this.next) {
      this.held.set(part.sequence, part.text);
      if (this.held.size > MAX_HELD_PARTS) {
        this.stalled = true;
        this.held.clear();
      }
      return "";
    }
    let released = part.text;
    this.next += 1;
    for (let text = this.held.get(this.next); text !== undefined; text = this.held.get(this.next)) {
      this.held.delete(this.next);
      released += text;
      this.next += 1;
    }
    this.textValue += released;
    return released;
  }

  /** Forgets the current turn (its final event arrived, or a new turn or attempt started). */
  reset(turnId?: string, attempt = 1): void {
    this.turnId = turnId;
    this.attemptValue = attempt;
    this.next = 1;
    this.held = new Map();
    this.stalled = false;
    this.textValue = "";
  }
}

/**
 * What is left to show of a final reply after `streamed` was shown: its remainder when the
 * streamed text is how it begins (the usual case), or all of it, marked as a restart, when the
 * stream diverged from it (a part was lost, or the agent answered anew after a redelivery).
 */
export function remainderAfterStream(streamed: string, content: string): { readonly text: string; readonly restarted: boolean } {
  if (content.startsWith(streamed)) return { text: content.slice(streamed.length), restarted: false };
  return { text: content, restarted: true };
}
