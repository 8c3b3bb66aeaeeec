/**
 * What the router knows about one routable agent type. The JSON form (one object per agent type)
 * is the routing-profile file format read by `switchboard route --profiles`.
 */
export interface RoutingProfile {
  readonly type: string;
  readonly description: string;
  readonly keywords: readonly string[];
  readonly examples: readonly string[];
}

export interface ScoredAgent {
  readonly agent: string;
  /** Calibrated confidence in [0, 1]; comparable across agents and against the threshold. */
  readonly score: number;
}

export interface Classification {
  /** The chosen agent type, or undefined when no agent is relevant enough. */
  readonly agent: string | undefined;
  /** Score of the best agent (chosen or not). */
  readonly score: number;
  /** Short, human-readable reason, for example `keyword:budget`. */
  readonly intent: string;
  /** Every agent's score, best first. */
  readonly ranked: readonly ScoredAgent[];
}

/**
 * Decides which agent type a user's message is for. `classify` is synchronous and pure: the router
 * feeds the live profiles and the classifier holds whatever index it needs.
 */
export interface Classifier {
  /** Replaces the known agent types; called whenever the registry changes. */
  setProfiles(profiles: readonly RoutingProfile[]): void;
  classify(text: string): Classification;
  /**
   * For classifiers that consult a remote service: the router calls this instead of `classify`
   * when present. Should resolve (falling back to an offline answer) unless `signal` aborts.
   */
  classifyAsync?(text: string, signal?: AbortSignal): Promise<Classification>;
}
