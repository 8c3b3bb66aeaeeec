import { AgentError, defineAgent } from "switchboard";
import { cityIn, hotelLimit } from "./policy.js";

/** What the agent remembers of one conversation, between turns. */
type TripState = { city: string | null };

export const travel = defineAgent({
  type: "travel",
  description: "Business travel: flights, hotels, visas, per diems and the travel policy.",
  keywords: ["travel", "flight", "hotel", "trip"],
  examples: ["Book me a flight to Munich next Tuesday", "What is the hotel limit in London?", "Do I need a visa for Oslo?"],
  initialState: (): TripState => ({ city: null }),
  async *reply(turn) {
    if (/\bmoon\b/i.test(turn.text)) throw new AgentError("Trips to the moon are outside the travel policy.");
    turn.state.city = cityIn(turn.text) ?? turn.state.city;
    const city = turn.state.city;
    if (!city) {
      yield "Which city are you travelling to? I know London, Munich, Paris and Oslo.";
      return;
    }
    yield `Checking the travel policy for ${city}… `;
    const limit = await hotelLimit(city, { signal: turn.signal });
    turn.logger.info("policy looked up", { city });
    yield limit === undefined ? `I have no hotel limit on file for ${city}.` : `Hotels in ${city} are covered up to ${limit} EUR a night.`;
    if (/\b(book it|that's all)\b/i.test(turn.text)) {
      yield " Your request is filed; have a good trip!";
      turn.end();
    }
  },
});
