import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCredentials, credentialsPath, formatCredentials, readCredentialsFile, type NatsCredentials } from "../core/credentials.js";
import { ConfigError, ErrorCode, SwitchboardError } from "../core/errors.js";
import { validateToken } from "../core/ids.js";
import { Role, SERVICE_ROLES } from "../core/roles.js";
import { Subjects } from "../core/subjects.js";
import { accountsConfigPrefix, renderAccountsConfig } from "./server-auth-config.js";

/** The file `nats.conf` includes, inside the auth directory. */
export const ACCOUNTS_FILE = "accounts.conf";

const PRIVATE_FILE = 0o600;
const PRIVATE_DIR = 0o700;

export class UserExistsError extends SwitchboardError {
  override name = "UserExistsError";
  constructor(readonly user: string, file: string) {
    super(ErrorCode.InvalidId, `user "${user}" already exists (${file}); use \`switchboard users rotate ${user}\` for new credentials`);
  }
}

export class UnknownUserError extends SwitchboardError {
  override name = "UnknownUserError";
  constructor(readonly user: string) {
    super(ErrorCode.NotFound, `there is no user "${user}" (see \`switchboard users list\`)`);
  }
}

/** Owner-only, whatever the umask: these files are passwords. */
function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR });
  chmodSync(dir, PRIVATE_DIR);
}

/** Written whole or not at all, never readable by others even for a moment. */
function writePrivateFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: PRIVATE_FILE });
  chmodSync(tmp, PRIVATE_FILE);
  renameSync(tmp, file);
}

/**
 * Credentials and the server's user list, kept in one directory (default `auth/` in the data directory):
 * `host.nk`, `worker.nk`, `admin.nk`, `users/<user>.nk` and `accounts.conf`, which `nats.conf`
 * includes. The credentials files are the source of truth; `accounts.conf` is regenerated from
 * them after every change and names only public keys.
 */
export class AuthStore {
  constructor(readonly dir: string) {}

  get accountsFile(): string {
    return join(this.dir, ACCOUNTS_FILE);
  }

  private get usersDir(): string {
    return join(this.dir, "users");
  }

  /** Whether credentials have been set up here (the server is then expected to require them). */
  isInitialized(): boolean {
    return existsSync(this.accountsFile);
  }

  /** The subject prefix the permissions were generated for. */
  prefix(): string | undefined {
    return this.isInitialized() ? accountsConfigPrefix(readFileSync(this.accountsFile, "utf8")) : undefined;
  }

  /**
   * Creates whatever is missing: the service roles' credentials and the accounts file. Returns the
   * files it created, and whether an existing accounts file was rewritten because this version
   * grants the roles other permissions (a running server must then reload it). Existing
   * credentials are kept, so running it again changes nothing.
   */
  init(prefix: string): { created: string[]; permissionsUpdated: boolean } {
    const stored = this.prefix();
    if (stored !== undefined && stored !== prefix) {
      throw new ConfigError(`the credentials in ${this.dir} were made for subject prefix "${stored}", not "${prefix}"; use --prefix ${stored}, or another SB_AUTH_DIR for this prefix`);
    }
    ensurePrivateDir(this.dir);
    ensurePrivateDir(this.usersDir);
    const created: string[] = [];
    for (const role of SERVICE_ROLES) {
      const file = credentialsPath(this.dir, role);
      if (existsSync(file)) continue;
      writePrivateFile(file, formatCredentials(createCredentials(role)));
      created.push(file);
    }
    if (created.length > 0 || !this.isInitialized()) {
      this.render(prefix);
      created.push(this.accountsFile);
      return { created, permissionsUpdated: false };
    }
    return { created, permissionsUpdated: this.syncPermissions(prefix) };
  }

  /** Rewrites the accounts file when the permissions it would get now differ; true if it did. */
  syncPermissions(prefix: string): boolean {
    const rendered = renderAccountsConfig(this.identities(), new Subjects(prefix));
    if (this.isInitialized() && readFileSync(this.accountsFile, "utf8") === rendered) return false;
    writePrivateFile(this.accountsFile, rendered);
    return true;
  }

  users(): string[] {
    if (!existsSync(this.usersDir)) return [];
    return readdirSync(this.usersDir)
      .filter((f) => f.endsWith(".nk"))
      .map((f) => f.slice(0, -3))
      .sort();
  }

  hasUser(user: string): boolean {
    return existsSync(credentialsPath(this.dir, Role.Client, user));
  }

  /** Creates a chat user's credentials; returns the file. */
  addUser(user: string): string {
    validateToken("user name", user);
    const prefix = this.requirePrefix();
    const file = credentialsPath(this.dir, Role.Client, user);
    if (existsSync(file)) throw new UserExistsError(user, file);
    writePrivateFile(file, formatCredentials(createCredentials(Role.Client, user)));
    this.render(prefix);
    return file;
  }

  removeUser(user: string): void {
    validateToken("user name", user);
    const prefix = this.requirePrefix();
    const file = credentialsPath(this.dir, Role.Client, user);
    if (!existsSync(file)) throw new UnknownUserError(user);
    rmSync(file);
    this.render(prefix);
  }

  /** New credentials for a service role or a chat user; the old ones stop working on reload. */
  rotate(target: { role: Role; user?: string }): string {
    const prefix = this.requirePrefix();
    const file = credentialsPath(this.dir, target.role, target.user);
    if (target.role === Role.Client && !existsSync(file)) throw new UnknownUserError(target.user ?? "");
    writePrivateFile(file, formatCredentials(createCredentials(target.role, target.user)));
    this.render(prefix);
    return file;
  }

  private requirePrefix(): string {
    const prefix = this.prefix();
    if (prefix === undefined) throw new ConfigError(`no credentials are set up in ${this.dir}; run \`switchboard auth init\` first`);
    return prefix;
  }

  private identities(): NatsCredentials[] {
    const out: NatsCredentials[] = [];
    for (const role of SERVICE_ROLES) {
      const file = credentialsPath(this.dir, role);
      if (existsSync(file)) out.push(readCredentialsFile(file));
    }
    for (const user of this.users()) {
      const creds = readCredentialsFile(credentialsPath(this.dir, Role.Client, user));
      if (creds.role !== Role.Client || creds.user !== user) {
        throw new ConfigError(`${creds.file} is not the credentials of chat user "${user}"; remove it or run \`switchboard users rotate ${user}\``);
      }
      out.push(creds);
    }
    return out;
  }

  private render(prefix: string): void {
    writePrivateFile(this.accountsFile, renderAccountsConfig(this.identities(), new Subjects(prefix)));
  }
}
