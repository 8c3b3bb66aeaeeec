/** Something that happened beside the conversation, for the person chatting to see at once. */
export interface Notice {
  readonly level: "info" | "warn" | "error" | "success";
  readonly text: string;
}

/**
 * Where the processes around a chat (those `switchboard up` started, say) post what happens to
 * them; the chat shows each notice when it comes. Notices posted before anyone listens are kept.
 */
export class NoticeBoard {
  private readonly listeners = new Set<(notice: Notice) => void>();
  private readonly backlog: Notice[] = [];

  post(notice: Notice): void {
    if (this.listeners.size === 0) {
      this.backlog.push(notice);
      return;
    }
    for (const listener of this.listeners) listener(notice);
  }

  /** Calls `listener` with every notice from now on (and those kept so far); returns the unsubscriber. */
  subscribe(listener: (notice: Notice) => void): () => void {
    this.listeners.add(listener);
    for (const notice of this.backlog.splice(0)) listener(notice);
    return () => this.listeners.delete(listener);
  }
}
