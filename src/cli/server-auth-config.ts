import { publicKey, type NatsCredentials } from "../core/credentials.js";
import { chatUserImports, inboundMapping, permissionsFor, Role, type Permissions, type SubjectRules } from "../core/roles.js";
import type { Subjects } from "../core/subjects.js";

/** The account of the services (host, worker, admin); JetStream is enabled in it alone. */
export const ACCOUNT_NAME = "SWITCHBOARD";

/**
 * The account of one chat user. Each user has its own, so that whatever the server sends on a
 * user's behalf (a stream's acknowledgement, a direct get's answer) stays in that user's account.
 */
export function userAccountName(user: string): string {
  return `USER_${user}`;
}

/** A string in nats-server's configuration syntax; quoted, so `$JS…` is not read as a variable. */
function quote(s: string): string {
  return JSON.stringify(s);
}

function rules(r: SubjectRules, indent: string): string {
  const parts = [`allow: [${r.allow.map(quote).join(", ")}]`];
  if (r.deny.length > 0) parts.push(`deny: [${r.deny.map(quote).join(", ")}]`);
  return parts.map((p) => `${indent}${p}`).join("\n");
}

function renderPermissions(p: Permissions, indent: string): string {
  const inner = `${indent}  `;
  return [
    `${indent}permissions: {`,
    `${inner}publish: {`,
    rules(p.publish, `${inner}  `),
    `${inner}}`,
    `${inner}subscribe: {`,
    rules(p.subscribe, `${inner}  `),
    `${inner}}`,
    `${indent}}`,
  ].join("\n");
}

function renderUser(c: NatsCredentials, subjects: Subjects): string {
  const who = c.role === Role.Client ? `chat user ${c.user}` : `${c.role} role`;
  const indent = "      ";
  return [
    `    # ${who}`,
    "    {",
    `${indent}nkey: ${quote(publicKey(c))}`,
    renderPermissions(permissionsFor(c.role, subjects, c.user), indent),
    "    }",
  ].join("\n");
}

/** What the Switchboard account offers one chat user's account, and that account only. */
function renderExports(user: string, subjects: Subjects): string[] {
  const { topics, lastAnswer, streams } = chatUserImports(subjects, user);
  const to = `accounts: [${quote(userAccountName(user))}]`;
  return [
    `    # chat user ${user}`,
    ...[topics, lastAnswer].map((s) => `    { service: ${quote(s)}, ${to} }`),
    ...streams.map((s) => `    { stream: ${quote(s)}, ${to} }`),
  ];
}

/** A mapping destination taking each wildcard token of the source in order (`{{wildcard(n)}}`). */
function sameTokens(subject: string): string {
  let wildcard = 0;
  return subject
    .split(".")
    .map((t) => (t === "*" ? `{{wildcard(${++wildcard})}}` : t))
    .join(".");
}

/**
 * The destination of an account mapping that keeps every literal token of `subject` and empties
 * every wildcard one: a token the user sends as `*` becomes empty (no subject with an empty token
 * is delivered or allowed anywhere), and one sent as `>` is never mapped at all (nats-server maps
 * only subjects whose tokens match the source), so neither reaches the Switchboard account.
 */
function literalTokensOnly(subject: string): string {
  let wildcard = 0;
  return subject
    .split(".")
    .map((t) => (t === "*" ? `{{split(${++wildcard},*)}}` : t))
    .join(".");
}

function renderUserAccount(c: NatsCredentials, subjects: Subjects): string {
  const user = c.user ?? "";
  const { topics, topicsAs, lastAnswer, streams } = chatUserImports(subjects, user);
  const from = `account: ${quote(ACCOUNT_NAME)}`;
  return [
    `  ${quote(userAccountName(user))} {`,
    "    users: [",
    renderUser(c, subjects),
    "    ]",
    "    imports: [",
    ...[topics, lastAnswer].map((s) => `      { service: { ${from}, subject: ${quote(s)} } }`),
    ...streams.map((s) => `      { stream: { ${from}, subject: ${quote(s)} } }`),
    "    ]",
    "    mappings: {",
    `      ${quote(topicsAs)}: ${quote(literalTokensOnly(topics))}`,
    // The internal name is publishable too (permissions are checked after the mapping above):
    // its wildcard tokens are emptied the same way.
    `      ${quote(topics)}: ${quote(literalTokensOnly(topics))}`,
    "    }",
    "  }",
  ].join("\n");
}

/**
 * The part of the server configuration that `nats.conf` includes. The services share one account
 * with JetStream; each chat user has an account of its own without JetStream, which reaches the
 * Switchboard account only through what it imports: publishing into its own sessions, the direct
 * get of its own last answer, and receiving its own answers. Replies to what a user sends are
 * mapped back into the user's account by the server, so no reply subject a user names can make
 * the server write into the Switchboard account or another user's.
 *
 * Nothing secret is in it. There is deliberately no `no_auth_user` and no top-level
 * `authorization` block: a connection without valid credentials is refused.
 */
export function renderAccountsConfig(identities: readonly NatsCredentials[], subjects: Subjects): string {
  const services = identities.filter((c) => c.role !== Role.Client);
  const users = identities.filter((c) => c.role === Role.Client && c.user !== undefined);
  return [
    "# Generated by `switchboard auth` and `switchboard users`; changes made here are overwritten.",
    `# prefix: ${subjects.prefix}`,
    "accounts {",
    `  ${ACCOUNT_NAME} {`,
    "    jetstream: enabled",
    "    users: [",
    services.map((c) => renderUser(c, subjects)).join("\n"),
    "    ]",
    ...(users.length > 0 ? ["    exports: [", ...users.flatMap((c) => renderExports(c.user ?? "", subjects)), "    ]"] : []),
    // What users publish arrives as <prefix>.inbound.…; the stream stores it as <prefix>.topic.….
    "    mappings: {",
    `      ${quote(inboundMapping(subjects).from)}: ${quote(sameTokens(inboundMapping(subjects).to))}`,
    "    }",
    "  }",
    ...users.map((c) => renderUserAccount(c, subjects)),
    "}",
    "",
  ].join("\n");
}

/** The subject prefix an accounts file was generated for, if it says. */
export function accountsConfigPrefix(text: string): string | undefined {
  return /^# prefix: (\S+)$/m.exec(text)?.[1];
}
