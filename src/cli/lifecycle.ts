/**
 * Resolves on the first SIGINT or SIGTERM (or when `signal` aborts), so a long-running command can
 * shut down gracefully; a second signal exits at once.
 */
export function untilShutdown(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (name: string) => {
      process.removeAllListeners("SIGINT");
      process.removeAllListeners("SIGTERM");
      const force = () => process.exit(130);
      process.once("SIGINT", force);
      process.once("SIGTERM", force);
      resolve(name);
    };
    process.once("SIGINT", () => onSignal("SIGINT"));
    process.once("SIGTERM", () => onSignal("SIGTERM"));
    signal?.addEventListener("abort", () => onSignal("abort"), { once: true });
  });
}
