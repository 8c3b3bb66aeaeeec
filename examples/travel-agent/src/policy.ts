/** Stands in for the company's travel-policy service; a real agent would call it over HTTP. */
const HOTEL_LIMITS: Readonly<Record<string, number>> = { london: 250, munich: 180, paris: 220, oslo: 200 };

export async function hotelLimit(city: string, options: { signal: AbortSignal }): Promise<number | undefined> {
  options.signal.throwIfAborted();
  // A backend takes a moment; honouring the signal lets the worker stop this call.
  await new Promise((resolve) => setTimeout(resolve, 50));
  return HOTEL_LIMITS[city.toLowerCase()];
}

export function cityIn(text: string): string | undefined {
  return Object.keys(HOTEL_LIMITS).find((city) => text.toLowerCase().includes(city));
}
