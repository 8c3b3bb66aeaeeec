/**
 * The oldest nats-server a chat user cannot crash. Before it, one publish whose reply subject
 * ends in a wildcard, through the service import every chat user's account has, sends the
 * server into endless recursion (nats-io/nats-server#3862). Debian 12 packages 2.9.10.
 */
export const SAFE_NATS_SERVER_VERSION = "2.9.15";

/** Whether `version` (like "2.9.10" or "v2.10.27") is older than {@link SAFE_NATS_SERVER_VERSION}. */
export function isVulnerableNatsServerVersion(version: string): boolean {
  const parts = (v: string) => v.replace(/^v/, "").split(/[.-]/).slice(0, 3).map((p) => Number.parseInt(p, 10));
  const [a, b] = [parts(version), parts(SAFE_NATS_SERVER_VERSION)];
  if (a.length < 3 || a.some((n) => Number.isNaN(n))) return false;
  for (let i = 0; i < 3; i++) {
    const [x, y] = [a[i] ?? 0, b[i] ?? 0];
    if (x !== y) return x < y;
  }
  return false;
}

/** What to tell an operator whose server is older than {@link SAFE_NATS_SERVER_VERSION}. */
export function vulnerableServerAdvice(version: string): string {
  return (
    `nats-server ${version} can be crashed by any chat user (a reply subject ending in a wildcard; fixed in ${SAFE_NATS_SERVER_VERSION}). ` +
    `Use ${SAFE_NATS_SERVER_VERSION} or newer: \`npm run setup\` in a checkout fetches one where the system's is older, Debian 13 packages 2.10, ` +
    `and SB_NATS_SERVER names the binary \`switchboard up\` starts`
  );
}
