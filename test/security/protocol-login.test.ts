import { createPrivateKey, createPublicKey, sign } from "node:crypto";
import { readFile } from "node:fs/promises";
import { connect as tcpConnect, type Socket } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentialsPath, parseCredentials, publicKey } from "../../src/core/credentials.js";
import { Role } from "../../src/core/roles.js";
import { UserMessageSchema } from "../../src/gen/switchboard/v1/conversation_pb.js";
import { Host } from "../../src/host/host.js";
import { SecureTestServer } from "../helpers/secure-server.js";
import { subjects, testLogger } from "../helpers/system.js";

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32Decode(text: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    value = (value << 5) | BASE32.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

function base32Encode(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** CRC-16/XMODEM: polynomial 0x1021, initial value 0. */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The steps of PROTOCOL.md "Logging in with the NKey", with nothing but Node's crypto. */
function keyFromSeed(seed: string): { publicKey: string; sign: (nonce: string) => string } {
  const raw = base32Decode(seed);
  expect([raw[0], raw[1]]).toEqual([0x95, 0x00]);
  expect(crc16(raw.subarray(0, 34))).toBe(raw[34]! | (raw[35]! << 8));
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), raw.subarray(2, 34)]);
  const key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const pub = createPublicKey(key).export({ format: "der", type: "spki" }).subarray(-32);
  const body = Buffer.concat([Buffer.from([0xa0]), pub]);
  const crc = crc16(body);
  return {
    publicKey: base32Encode(Buffer.concat([body, Buffer.from([crc & 0xff, crc >> 8])])),
    sign: (nonce) => sign(null, Buffer.from(nonce), key).toString("base64url"),
  };
}

type Frame = { op: "INFO"; info: Record<string, unknown> } | { op: "PONG" | "+OK" } | { op: "-ERR"; text: string } | { op: "MSG"; subject: string; headers: string; body: Buffer };

/** A raw client connection: NATS protocol lines in, parsed frames out. */
class RawClient {
  private buffer = Buffer.alloc(0);
  private readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  private constructor(private readonly socket: Socket) {
    socket.on("data", (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.parse();
    });
  }

  static open(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = tcpConnect(Number(port), hostname, () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  private parse(): void {
    for (;;) {
      const end = this.buffer.indexOf("\r\n");
      if (end < 0) return;
      const line = this.buffer.subarray(0, end).toString();
      const [op, ...args] = line.split(" ");
      if (op === "MSG" || op === "HMSG") {
        const total = Number(args.at(-1));
        const headerSize = op === "HMSG" ? Number(args.at(-2)) : 0;
        if (this.buffer.length < end + 2 + total + 2) return;
        const payload = this.buffer.subarray(end + 2, end + 2 + total);
        this.frames.push({ op: "MSG", subject: args[0] ?? "", headers: payload.subarray(0, headerSize).toString(), body: Buffer.from(payload.subarray(headerSize)) });
        this.buffer = this.buffer.subarray(end + 2 + total + 2);
      } else {
        this.buffer = this.buffer.subarray(end + 2);
        if (op === "INFO") this.frames.push({ op, info: JSON.parse(line.slice(5)) as Record<string, unknown> });
        else if (op === "PING") this.socket.write("PONG\r\n");
        else if (op === "-ERR") this.frames.push({ op, text: line });
        else if (op === "PONG" || op === "+OK") this.frames.push({ op });
      }
      for (const w of this.waiters.splice(0)) w();
    }
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** The next frame, in order; fails after a timeout. */
  async next(timeoutMs = 5_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (Date.now() > deadline) throw new Error("no frame from the server");
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.frames.shift() as Frame;
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * A chat client written from docs/PROTOCOL.md alone: it derives the public key from the seed in
 * the `.nk` file, signs the server's nonce, publishes an event and reads back an answer, over a
 * plain socket.
 */
describe("the NKey login and the answers a client receives, as PROTOCOL.md describes them", () => {
  let server: SecureTestServer;
  let host: Host;
  let seedText: string;

  beforeAll(async () => {
    server = await SecureTestServer.start({ users: ["alice"] });
    host = new Host({ nc: await server.connectAs(Role.Host), subjects, logger: testLogger(), heartbeatIntervalMs: 500, workerTtlMs: 5_000 });
    await host.start();
    seedText = await readFile(credentialsPath(server.store.dir, Role.Client, "alice"), "utf8");
  });

  afterAll(async () => {
    await host?.close();
    await server?.stop();
  });

  async function login(signWith?: (nonce: string, sign: (text: string) => string) => string): Promise<RawClient> {
    const seed = /^SU[A-Z2-7]{56}$/m.exec(seedText)?.[0] ?? "";
    const key = keyFromSeed(seed);
    expect(key.publicKey).toBe(publicKey(parseCredentials(seedText)));
    const client = await RawClient.open(server.url);
    const info = await client.next();
    expect(info).toMatchObject({ op: "INFO", info: { auth_required: true, headers: true, nonce: expect.any(String) } });
    const nonce = String((info as { info: Record<string, unknown> }).info["nonce"]);
    const connect = { verbose: false, pedantic: false, headers: true, no_responders: true, protocol: 1, lang: "raw", version: "0", nkey: key.publicKey, sig: signWith ? signWith(nonce, key.sign) : key.sign(nonce) };
    client.send(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`);
    return client;
  }

  it("logs in with the signed nonce; a wrong signature is refused", async () => {
    const client = await login();
    expect(await client.next()).toEqual({ op: "PONG" });
    client.close();
    // The right key signing something else than this connection's nonce (a replayed signature).
    const impostor = await login((nonce, signText) => signText(`${nonce}-old`));
    expect(await impostor.next()).toMatchObject({ op: "-ERR", text: expect.stringMatching(/Authorization Violation/) });
    impostor.close();
  });

  it("gets the stream's acknowledgement of an event and a 404 for a missing answer, on its inbox", async () => {
    const client = await login();
    expect(await client.next()).toEqual({ op: "PONG" });
    client.send("SUB _INBOX_u_alice.raw.> 1\r\n");
    const body = Buffer.from(toBinary(UserMessageSchema, create(UserMessageSchema, { sessionId: "sraw", user: "alice", turnId: "t1", text: "hello" })));
    const headers = ["NATS/1.0", "ce-specversion: 1.0", "ce-id: sraw-t1", "ce-source: raw", "ce-type: switchboard.v1.UserMessage", `ce-time: ${new Date().toISOString()}`, "Nats-Msg-Id: sraw-t1", "", ""].join("\r\n");
    client.send(Buffer.concat([Buffer.from(`HPUB sb.topic.default.alice.sraw _INBOX_u_alice.raw.1 ${headers.length} ${headers.length + body.length}\r\n${headers}`), body, Buffer.from("\r\n")]));
    const ack = await client.next();
    expect(ack).toMatchObject({ op: "MSG", subject: "_INBOX_u_alice.raw.1" });
    expect(JSON.parse((ack as { body: Buffer }).body.toString())).toEqual({ stream: subjects.eventStream, seq: expect.any(Number) });

    client.send("PUB $JS.API.DIRECT.GET.SB_EVENTS.sb.topic.response.alice.nosuch _INBOX_u_alice.raw.2 0\r\n\r\n");
    const missing = await client.next();
    expect(missing).toMatchObject({ op: "MSG", subject: "_INBOX_u_alice.raw.2", headers: expect.stringMatching(/^NATS\/1\.0 404 Message Not Found/) });
    expect((missing as { body: Buffer }).body).toHaveLength(0);
    client.close();
  });
});
