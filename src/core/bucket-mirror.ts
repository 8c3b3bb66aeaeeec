import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import type { QueuedIterator } from "@nats-io/transport-node";
import { decodeBody } from "./codec.js";

/** How long start() waits for a bucket's initial contents before going on with what it has. */
const INITIAL_LOAD_TIMEOUT_MS = 5_000;

export interface BucketMirrorOptions {
  /** Called after every change once the initial contents are in. */
  readonly onChange: () => void;
  /** Called for a value that does not decode; the key is then left out. */
  readonly onBadRecord: (key: string, err: unknown) => void;
}

/**
 * A live copy of a bucket's protobuf records, kept by one watch: what a reader follows when it
 * must see every change without asking (the registry, learned routing examples).
 */
export class BucketMirror<Desc extends DescMessage> {
  readonly records = new Map<string, MessageShape<Desc>>();
  private watcher: QueuedIterator<KvWatchEntry> | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly schema: Desc,
    private readonly options: BucketMirrorOptions,
  ) {}

  /** Starts following `kv`; resolves once its current contents are in (or after a bounded wait). */
  async start(kv: KV): Promise<void> {
    const status = await kv.status();
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    if (status.values === 0) markReady();
    this.watcher = await kv.watch();
    this.loop = this.follow(this.watcher, markReady);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, INITIAL_LOAD_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }

  private async follow(watcher: QueuedIterator<KvWatchEntry>, markReady: () => void): Promise<void> {
    let initialized = false;
    for await (const entry of watcher) {
      try {
        if (entry.operation === "PUT") this.records.set(entry.key, decodeBody(this.schema, entry.value));
        else this.records.delete(entry.key);
      } catch (err) {
        this.options.onBadRecord(entry.key, err);
      }
      if (!initialized && (entry.delta === 0 || entry.isUpdate)) {
        initialized = true;
        markReady();
      }
      if (initialized) this.options.onChange();
    }
  }

  async close(): Promise<void> {
    this.watcher?.stop();
    await this.loop;
  }
}
