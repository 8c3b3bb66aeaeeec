import type { JetStreamManager } from "@nats-io/jetstream";
import { errorMessage } from "../core/errors.js";
import type { Logger } from "../core/logging.js";

export interface StreamWatchOptions {
  readonly stream: string;
  /** The stream's `max_age`: a message older than this may leave it. */
  readonly maxAgeMs: number;
  readonly intervalMs: number;
}

/** Clock differences between this process and the server, and the server's expiry timer. */
const EXPIRY_SLACK_MS = 60_000;

interface Seen {
  readonly firstSeq: number;
  /** Server time of the first message; 0 for an empty stream. */
  readonly firstMs: number;
}

/**
 * Notices a stream whose first sequence moved past messages that were not old enough to expire:
 * they were purged or deleted, which the event stream refuses; if it happens anyway (a stream
 * recreated without its protections, an operator with other credentials, a server bug), it is
 * logged as `stream.first_seq_jumped` with the sequences lost.
 */
export class StreamWatch {
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private seen: Seen | undefined;
  private closed = false;

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly options: StreamWatchOptions,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  /** Compares the stream's first sequence with the last look; returns once done. */
  async check(now = Date.now()): Promise<void> {
    let state;
    try {
      ({ state } = await this.jsm.streams.info(this.options.stream));
    } catch (err) {
      this.logger.debug({ event: "stream.watch_failed", stream: this.options.stream, err: errorMessage(err) }, "could not read the stream's state");
      return;
    }
    const firstMs = state.messages > 0 ? Date.parse(state.first_ts) : 0;
    const previous = this.seen;
    this.seen = { firstSeq: state.first_seq, firstMs: Number.isFinite(firstMs) ? firstMs : 0 };
    if (!previous || state.first_seq <= previous.firstSeq || previous.firstMs === 0) return;
    // The message that was first before may have aged out since; one that could not have did not.
    if (previous.firstMs + this.options.maxAgeMs > now + EXPIRY_SLACK_MS) {
      this.logger.warn(
        { event: "stream.first_seq_jumped", stream: this.options.stream, fromSeq: previous.firstSeq, toSeq: state.first_seq, lost: state.first_seq - previous.firstSeq },
        "the stream's first messages disappeared before they were old enough to expire (purged or deleted?)",
      );
    }
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.checking = this.check().finally(() => {
        this.checking = undefined;
        this.schedule();
      });
    }, this.options.intervalMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.checking;
  }
}
