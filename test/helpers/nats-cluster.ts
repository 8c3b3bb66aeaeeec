import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestNatsServer } from "./nats-server.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A local JetStream cluster of real nats-server processes, joined by routes. */
export class TestNatsCluster {
  private constructor(
    readonly dir: string,
    readonly nodes: TestNatsServer[],
  ) {}

  /** All client URLs, comma-separated, as NATS_URL takes them. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(",");
  }

  static async start(size = 3): Promise<TestNatsCluster> {
    const dir = await mkdtemp(join(tmpdir(), "sb-cluster-"));
    const clientPorts = await Promise.all(Array.from({ length: size }, freePort));
    const routePorts = await Promise.all(Array.from({ length: size }, freePort));
    const nodes = await Promise.all(
      clientPorts.map(async (port, i) => {
        const nodeDir = join(dir, `n${i + 1}`);
        await mkdir(nodeDir, { recursive: true });
        const routes = routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
        return TestNatsServer.start({
          port,
          dir: nodeDir,
          extraConfig: [`server_name: n${i + 1}`, `cluster { name: sbtest, listen: 127.0.0.1:${routePorts[i]}, routes: [${routes.join(", ")}] }`].join("\n"),
        });
      }),
    );
    return new TestNatsCluster(dir, nodes);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
    await rm(this.dir, { recursive: true, force: true });
  }
}
