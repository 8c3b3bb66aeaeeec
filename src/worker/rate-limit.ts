import { performance } from "node:perf_hooks";
import type { NatsConnection } from "@nats-io/transport-node";
import { DEFAULT_RATE_LIMIT_PER_SEC, type SwitchboardConfig } from "../core/config.js";

export interface RateLimitOptions {
  /** Sustained messages per second per key. */
  readonly perSecond: number;
  /** Messages a key may send at once before the rate applies. */
  readonly burst: number;
  /** Keys remembered at most; the least recently seen are forgotten (and start full again). */
  readonly maxKeys?: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/**
 * One token bucket per key (a user): each message takes a token, tokens come back at `perSecond`
 * up to `burst`. Memory is bounded by `maxKeys`, so a stream of distinct keys cannot grow it.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxKeys: number;

  constructor(
    readonly options: RateLimitOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(options.perSecond > 0) || !(options.burst >= 1)) throw new RangeError("a rate limit needs perSecond > 0 and burst >= 1");
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  /** Takes a token for `key`; false when the key has none left. */
  take(key: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.options.burst, updatedMs: now };
    bucket.tokens = Math.min(this.options.burst, bucket.tokens + ((now - bucket.updatedMs) / 1000) * this.options.perSecond);
    bucket.updatedMs = now;
    // Re-inserting keeps the map in least-recently-seen order.
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (!oldest.done) this.buckets.delete(oldest.value);
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * The per-user limit: as configured, or by default only where users are authenticated (on an open
 * server anyone can claim any user name, so a per-user limit would protect nothing).
 */
export function rateLimitFor(config: SwitchboardConfig, nc: NatsConnection): RateLimitOptions | undefined {
  const perSecond = config.rateLimitPerSec ?? (nc.info?.auth_required === true ? DEFAULT_RATE_LIMIT_PER_SEC : 0);
  return perSecond > 0 ? { perSecond, burst: config.rateBurst } : undefined;
}
