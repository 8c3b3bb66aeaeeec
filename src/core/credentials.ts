import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { nkeys } from "@nats-io/transport-node";
import { ConfigError, errorMessage } from "./errors.js";
import { isValidToken, validateToken } from "./ids.js";
import { inboxPrefix, isRole, Role } from "./roles.js";

/**
 * One identity on the bus: an NKey seed (the server keeps only its public key) plus what the
 * client needs to use it — the role, the chat user it stands for, and its inbox prefix.
 *
 * The file is the decorated NKey format other NATS tools read, preceded by `#` lines that
 * Switchboard reads:
 *
 * ```
 * # role: client
 * # user: alice
 * # inbox: _INBOX_u_alice
 * -----BEGIN USER NKEY SEED-----
 * SU…
 * ------END USER NKEY SEED------
 * ```
 */
export interface NatsCredentials {
  readonly role: Role;
  /** The chat user, for {@link Role.Client}. */
  readonly user?: string;
  readonly seed: string;
  readonly inboxPrefix: string;
  /** Where it was read from, for messages. */
  readonly file?: string;
}

const SEED = /^SU[A-Z2-7]{56}$/;

/** Credentials with a fresh key pair. */
export function createCredentials(role: Role, user?: string): NatsCredentials {
  const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
  return { role, ...(role === Role.Client ? { user: validateToken("user name", user ?? "") } : {}), seed, inboxPrefix: inboxPrefix(role, user) };
}

/** The public key the server config names (the seed never leaves the credentials file). */
export function publicKey(credentials: NatsCredentials): string {
  return nkeys.fromSeed(new TextEncoder().encode(credentials.seed)).getPublicKey();
}

export function formatCredentials(c: NatsCredentials): string {
  return [
    "# Switchboard credentials for NATS. Whoever holds this file acts as this identity: keep it private (mode 0600).",
    `# role: ${c.role}`,
    ...(c.user ? [`# user: ${c.user}`] : []),
    `# inbox: ${c.inboxPrefix}`,
    "-----BEGIN USER NKEY SEED-----",
    c.seed,
    "------END USER NKEY SEED------",
    "",
  ].join("\n");
}

export function parseCredentials(text: string, file = "credentials"): NatsCredentials {
  const meta = new Map<string, string>();
  let seed: string | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const m = /^#\s*([a-z]+):\s*(\S+)\s*$/.exec(line);
    if (m?.[1] && m[2]) meta.set(m[1], m[2]);
    else if (SEED.test(line)) seed ??= line;
  }
  if (!seed) throw new ConfigError(`${file} holds no NKey user seed (a line starting with SU); create credentials with \`switchboard auth init\` or \`switchboard users add NAME\``);
  const role = meta.get("role") ?? Role.Client;
  if (!isRole(role)) throw new ConfigError(`${file} names an unknown role ${JSON.stringify(role)}; roles are host, worker, client and admin`);
  const user = meta.get("user");
  if (user !== undefined && !isValidToken(user)) throw new ConfigError(`${file} names an invalid user ${JSON.stringify(user.slice(0, 80))}`);
  if (role === Role.Client && user === undefined) throw new ConfigError(`${file} is a chat user's credentials without a "# user:" line`);
  const prefix = meta.get("inbox") ?? inboxPrefix(role, user);
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new ConfigError(`${file} names an invalid inbox prefix ${JSON.stringify(prefix)}`);
  return { role, ...(user !== undefined ? { user } : {}), seed, inboxPrefix: prefix, file };
}

/** Anyone but the owner may read it: worth a warning, since the file is a password. */
export function isExposed(file: string): boolean {
  try {
    return (statSync(file).mode & 0o077) !== 0;
  } catch {
    return false;
  }
}

export function readCredentialsFile(file: string): NatsCredentials {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read credentials file ${file} (${errorMessage(err)}); check --creds / SB_CREDS`);
  }
  return parseCredentials(text, file);
}

/** `<authDir>/host.nk`, `worker.nk`, `admin.nk`; a chat user's is `<authDir>/users/<user>.nk`. */
export function credentialsPath(authDir: string, role: Role, user?: string): string {
  if (role === Role.Client) return join(authDir, "users", `${validateToken("user name", user ?? "")}.nk`);
  return join(authDir, `${role}.nk`);
}
