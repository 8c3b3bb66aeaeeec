import { ChatSession } from "../../src/cli/chat-session.js";
import { subjects, type TestSystem } from "./system.js";

export async function openChat(sys: TestSystem, user = "alice", replyTimeoutMs = 5_000): Promise<ChatSession> {
  const chat = new ChatSession({ nc: await sys.connect(`chat-${user}`), subjects, user, logger: sys.logger, replyTimeoutMs });
  await chat.start();
  sys.closers.push(() => chat.close());
  return chat;
}
