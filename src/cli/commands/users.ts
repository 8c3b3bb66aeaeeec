import { resolve } from "node:path";
import { ConfigError } from "../../core/errors.js";
import { validateToken } from "../../core/ids.js";
import { isRole, Role, SERVICE_ROLES } from "../../core/roles.js";
import { AuthStore } from "../auth-store.js";
import { AUTH_DIR, DEFAULT_NATS_PORT, natsPidFileFor, portOf } from "../paths.js";
import { natsConfigFor } from "../nats-config.js";
import { COMMON_HELP, configFrom, parse, warnOnStderr } from "../options.js";
import { reloadNatsServer } from "../reload.js";

const RELOAD_OPTIONS = { "no-reload": { type: "boolean" }, "pid-file": { type: "string" } } as const;

const RELOAD_HELP = `  --no-reload         do not ask nats-server to re-read its configuration
  --pid-file <file>   pid file of the nats-server to reload (default: the one \`switchboard up\`
                      writes for the server's port, nats-server.pid or nats-server-PORT.pid in
                      the data directory)`;

export const USERS_HELP = `Usage: switchboard users <add NAME | remove NAME | rotate NAME | list> [options]

Chat users and their credentials. Each user has an account of its own on the server and may
chat only in its own sessions: it publishes to sb.topic.<type>.NAME.<session> and reads
sb.topic.response.NAME.*, nothing else.
  add NAME            create NAME's credentials (users/NAME.nk in the auth directory, mode 0600)
  remove NAME         delete them; the server closes NAME's connections when it reloads
  rotate NAME         new credentials for NAME; the old file stops working
  list                the users there are

After a change the server's user list (accounts.conf) is rewritten and nats-server is told to
re-read it (SIGHUP, twice, to the pid in its pid file, as \`nats-server --signal reload=<pid file>\`
does; nats-server 2.9 completes a new user's account only at the second).
Give a user its file; it chats with \`switchboard chat --creds FILE\` (or --user NAME on this machine).

Options:
${RELOAD_HELP}
${COMMON_HELP}`;

export const AUTH_HELP = `Usage: switchboard auth <init | rotate ${SERVICE_ROLES.join("|")} | reload> [options]

Credentials of the services (NKeys: the server knows only public keys).
  init                create whatever is missing in the auth directory: host.nk, worker.nk and
                      admin.nk, and accounts.conf, which nats.conf includes. Safe to run again;
                      rewrites accounts.conf when this version's role permissions differ. Prints
                      the configuration to start nats-server with (for an installed package, a
                      copy of nats.conf in the data directory).
  rotate ROLE         new credentials for a service role; restart its processes with the new file
  reload              ask nats-server to re-read its configuration (exits 1 when it could not)

The auth directory is ${AUTH_DIR} (env SB_AUTH_DIR; SB_DATA_DIR
moves the data directory it is in). \`switchboard up\` runs init by itself.

Options:
${RELOAD_HELP}
${COMMON_HELP}`;

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/**
 * Applies a change to the running server, or says (on stderr) how to; false when a reload was
 * wanted and did not happen.
 */
async function reload(values: Parameters<typeof configFrom>[0] & { "no-reload"?: boolean | undefined; "pid-file"?: string | undefined }): Promise<boolean> {
  const pidFile = values["pid-file"] ?? natsPidFileFor(portOf(configFrom(values).natsUrl));
  if (values["no-reload"]) {
    print(`not reloaded; run \`nats-server --signal reload=${pidFile}\` (or kill -HUP <pid>) for the change to take effect`);
    return true;
  }
  const outcome = await reloadNatsServer(pidFile);
  if (outcome.reloaded) print(`nats-server ${outcome.pid} reloaded its configuration`);
  else warnOnStderr(`nats-server not reloaded: ${outcome.reason}. The change takes effect when it (re)starts, or after \`nats-server --signal reload=<pid file>\``);
  return outcome.reloaded;
}

export async function usersCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("users", args, RELOAD_OPTIONS);
  const [what, name] = positionals;
  if (values.help || !what) {
    print(USERS_HELP);
    return values.help ? 0 : 2;
  }
  const store = new AuthStore(configFrom(values).authDir);
  switch (what) {
    case "list":
      for (const user of store.users()) print(user);
      return 0;
    case "add":
    case "remove":
    case "rotate": {
      if (!name) throw new ConfigError(`usage: switchboard users ${what} NAME`);
      validateToken("user name", name);
      if (what === "add") print(`created ${store.addUser(name)} (user ${name}; keep it private)`);
      else if (what === "rotate") print(`new credentials in ${store.rotate({ role: Role.Client, user: name })}; the old ones stop working`);
      else {
        store.removeUser(name);
        print(`removed user ${name}`);
      }
      await reload(values);
      return 0;
    }
    default:
      throw new ConfigError(`unknown users command "${what}"; use add, remove, rotate or list`);
  }
}

export async function authCommand(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse("auth", args, RELOAD_OPTIONS);
  const [what, role] = positionals;
  if (values.help || !what) {
    print(AUTH_HELP);
    return values.help ? 0 : 2;
  }
  const config = configFrom(values);
  const store = new AuthStore(config.authDir);
  switch (what) {
    case "init": {
      const { created, permissionsUpdated } = store.init(config.prefix);
      for (const file of created) print(`created ${file}`);
      if (permissionsUpdated) print(`updated the roles' permissions in ${store.accountsFile}; if nats-server is running, apply them with \`switchboard auth reload\``);
      else if (created.length === 0) print(`credentials already set up in ${store.dir}`);
      // The configuration that includes them: a checkout's nats.conf, or a copy in the data
      // directory for an installed package (whose nats.conf names paths inside the package).
      if (resolve(config.authDir) === resolve(AUTH_DIR)) print(`start nats-server with: nats-server -c ${natsConfigFor(DEFAULT_NATS_PORT)}`);
      return 0;
    }
    case "rotate": {
      if (!role || !isRole(role) || role === Role.Client) {
        throw new ConfigError(`usage: switchboard auth rotate ${SERVICE_ROLES.join("|")} (chat users: switchboard users rotate NAME)`);
      }
      print(`new credentials in ${store.rotate({ role })}; restart the ${role} processes with them`);
      await reload(values);
      return 0;
    }
    case "reload":
      // Reloading is all this command does: a script must see that it did not happen.
      return (await reload(values)) ? 0 : 1;
    default:
      throw new ConfigError(`unknown auth command "${what}"; use init, rotate ROLE or reload`);
  }
}
