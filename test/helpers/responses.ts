import type { Message } from "@bufbuild/protobuf";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeEvent } from "../../src/core/codec.js";
import { subjects } from "./system.js";

export interface SeenEvent {
  readonly session: string;
  readonly id: string;
  readonly message: Message;
}

/**
 * Every event delivered on a user's response topic, duplicates included: what the wire carried,
 * before any client-side de-duplication.
 */
export async function watchResponses(nc: NatsConnection, user: string): Promise<SeenEvent[]> {
  const seen: SeenEvent[] = [];
  nc.subscribe(subjects.userTopics("response", user), {
    callback: (_err, msg) => {
      const topic = subjects.parseTopic(msg.subject);
      try {
        const decoded = decodeEvent(msg);
        seen.push({ session: topic?.source.session ?? "", id: decoded.attributes.id, message: decoded.message });
      } catch {
        // malformed events are another test's business
      }
    },
  });
  await nc.flush();
  return seen;
}
