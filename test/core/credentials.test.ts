import { describe, expect, it } from "vitest";
import { renderAccountsConfig } from "../../src/cli/server-auth-config.js";
import { loadConfig } from "../../src/core/config.js";
import { createCredentials, formatCredentials, parseCredentials, publicKey } from "../../src/core/credentials.js";
import { ConfigError, InvalidIdError } from "../../src/core/errors.js";
import { inboxPrefix, permissionsFor, Role } from "../../src/core/roles.js";
import { Subjects } from "../../src/core/subjects.js";

describe("credentials files", () => {
  it("round-trip role, user, inbox prefix and seed, in the decorated NKey format", () => {
    const alice = createCredentials(Role.Client, "alice");
    const text = formatCredentials(alice);
    expect(text).toMatch(/-----BEGIN USER NKEY SEED-----\nSU[A-Z2-7]{56}\n------END USER NKEY SEED------/);
    const parsed = parseCredentials(text, "alice.nk");
    expect(parsed).toMatchObject({ role: "client", user: "alice", inboxPrefix: "_INBOX_u_alice", seed: alice.seed });
    expect(publicKey(parsed)).toMatch(/^U[A-Z2-7]{55}$/);
    expect(parseCredentials(formatCredentials(createCredentials(Role.Worker))).inboxPrefix).toBe("_INBOX_worker");
  });

  it("refuses files without a seed, with an unknown role, or a chat user without a name", () => {
    expect(() => parseCredentials("# role: host\nnot a seed\n")).toThrow(ConfigError);
    const seed = createCredentials(Role.Host).seed;
    expect(() => parseCredentials(`# role: root\n${seed}\n`)).toThrow(/unknown role "root"/);
    expect(() => parseCredentials(`# role: client\n${seed}\n`)).toThrow(/without a "# user:" line/);
    expect(() => parseCredentials(`# role: client\n# user: a.b\n${seed}\n`)).toThrow(/invalid user/);
  });

  it("gives every identity its own inbox prefix, none of which a chat user's can equal", () => {
    expect([Role.Host, Role.Worker, Role.Admin].map((r) => inboxPrefix(r))).toEqual(["_INBOX_host", "_INBOX_worker", "_INBOX_admin"]);
    expect(inboxPrefix(Role.Client, "host")).toBe("_INBOX_u_host");
    expect(() => inboxPrefix(Role.Client, "a>")).toThrow(InvalidIdError);
  });
});

describe("the server's user list", () => {
  it("names public keys only, services in one account with JetStream, each chat user in its own, and no anonymous user", () => {
    const subjects = new Subjects("sb");
    const ids = [createCredentials(Role.Host), createCredentials(Role.Client, "alice")];
    const conf = renderAccountsConfig(ids, subjects);
    expect(conf.match(/jetstream: enabled/g)).toHaveLength(1);
    expect(conf).toContain(`nkey: "${publicKey(ids[0]!)}"`);
    for (const c of ids) expect(conf).not.toContain(c.seed);
    expect(conf).not.toMatch(/no_auth_user|authorization\s*{/);
    const aliceAccount = conf.slice(conf.indexOf('"USER_alice" {'));
    expect(aliceAccount).toContain(`nkey: "${publicKey(ids[1]!)}"`);
    expect(aliceAccount).toContain('{ service: { account: "SWITCHBOARD", subject: "sb.inbound.*.alice.*" } }');
    expect(aliceAccount).toContain('{ stream: { account: "SWITCHBOARD", subject: "sb.topic.response.alice.*" } }');
    expect(aliceAccount).toContain('"sb.topic.*.alice.*": "sb.inbound.{{split(1,*)}}.alice.{{split(2,*)}}"');
    expect(conf).toContain('{ service: "sb.inbound.*.alice.*", accounts: ["USER_alice"] }');
    expect(conf).toContain('"sb.inbound.*.*.*": "sb.topic.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}"');
  });

  it("confines a chat user to its own sessions under any prefix", () => {
    const p = permissionsFor(Role.Client, new Subjects("acme"), "bob");
    // Checked after the user's account moved `acme.topic.<type>.bob.<session>` to `acme.inbound.…`.
    expect(p.publish.allow).toEqual(["acme.inbound.*.bob.*", "$JS.API.DIRECT.GET.ACME_EVENTS.acme.topic.response.bob.*"]);
    expect(p.publish.deny).toEqual(["acme.inbound.response.bob.*", "acme.inbound.user_proxy.bob.*"]);
    expect(p.subscribe.allow).toEqual(["acme.topic.response.bob.*", "acme.delta.bob.*", "_INBOX_u_bob.>"]);
  });

  it("lets services answer only the inboxes of those who may ask them, never any reply subject", () => {
    const s = new Subjects("sb");
    const host = permissionsFor(Role.Host, s);
    const worker = permissionsFor(Role.Worker, s);
    expect(host.publish.allow).toEqual(expect.arrayContaining(["_INBOX_worker.>", "_INBOX_admin.>", "_INBOX_host.>"]));
    expect(worker.publish.allow).toEqual(expect.arrayContaining(["_INBOX_worker.>", "_INBOX_admin.>"]));
    expect(worker.publish.allow).not.toContain("_INBOX_host.>");
    expect(renderAccountsConfig([Role.Host, Role.Worker, Role.Admin].map((r) => createCredentials(r)), s)).not.toContain("allow_responses");
  });
});

describe("security settings", () => {
  it("reads credentials, TLS and rate limits from flags and the environment", () => {
    const config = loadConfig({ credsFile: "/x/alice.nk" }, { SB_TLS_CA: "/x/ca.pem", SB_RATE_LIMIT: "0", SB_RATE_BURST: "5", SB_AUTH_DIR: "/x/auth" });
    expect(config).toMatchObject({ credsFile: "/x/alice.nk", tlsCa: "/x/ca.pem", rateLimitPerSec: 0, rateBurst: 5, authDir: "/x/auth" });
    expect(loadConfig({}, {}).rateLimitPerSec).toBeUndefined();
    expect(() => loadConfig({}, { SB_TLS_CERT: "/x/c.pem" })).toThrow(/SB_TLS_CERT and SB_TLS_KEY go together/);
    expect(() => loadConfig({}, { SB_RATE_LIMIT: "-1" })).toThrow(/SB_RATE_LIMIT must be an integer of at least 0/);
  });
});
