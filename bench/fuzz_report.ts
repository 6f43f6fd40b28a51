// The fuzz campaign's tallies: outcomes per target, findings, and the distinct error messages a
// user would see (engine errors such as "x is not iterable" listed apart, as unclear).
import type { CaseReport, FuzzMode } from "./fuzz_child";

export interface Finding {
  kind: "crash" | "hang" | "no-exit" | "abnormal-exit" | "nonError" | "stray" | "leak";
  mode: FuzzMode;
  target: string;
  seed: number;
  how: string;
  detail: string;
  /** False when the child died only after other cases ran before it (state-dependent). */
  isolated: boolean;
  replay: string;
}

type Report = CaseReport & { mode: FuzzMode };
type Counts = Record<string, number>;

interface MessageGroup {
  target: string;
  errorName: string;
  message: string;
  count: number;
  seed: number;
  mode: FuzzMode;
}

export interface Summary {
  totals: Counts;
  byTarget: Record<string, Counts>;
  findings: Finding[];
  /** How many distinct unclear messages there were (the list keeps the 100 most frequent). */
  unclearDistinct: number;
  unclearMessages: MessageGroup[];
  readerMessages: MessageGroup[];
}

function bump(table: Record<string, Counts>, key: string, field: string, by = 1): void {
  const counts = table[key] ?? {};
  counts[field] = (counts[field] ?? 0) + by;
  table[key] = counts;
}

function tally(reports: Report[], findings: Finding[]): Record<string, Counts> {
  const byTarget: Record<string, Counts> = {};
  for (const r of reports) {
    bump(byTarget, r.target || "(unknown)", "cases");
    bump(byTarget, r.target || "(unknown)", r.outcome);
  }
  for (const f of findings) {
    if (f.kind !== "nonError") bump(byTarget, f.target || "(unknown)", f.kind);
    // These cases never reported, so they are counted here.
    if (f.kind === "crash" || f.kind === "hang" || f.kind === "abnormal-exit")
      bump(byTarget, f.target || "(unknown)", "cases");
  }
  return byTarget;
}

/** Distinct messages of the reports `keep` selects, most frequent first (temp paths and numbers folded). */
function messages(reports: Report[], keep: (r: Report) => boolean): MessageGroup[] {
  const groups = new Map<string, MessageGroup>();
  for (const r of reports) {
    if (!keep(r)) continue;
    const message = (r.message ?? "")
      .replace(/\/tmp\/[^\s:'"]+/g, "<tmp>")
      .replace(/\b\d+\b/g, "N")
      .slice(0, 200);
    const key = `${r.target}|${r.errorName}|${message}`;
    const g = groups.get(key);
    if (g) g.count++;
    else
      groups.set(key, {
        target: r.target,
        errorName: r.errorName ?? "",
        message,
        count: 1,
        seed: r.seed,
        mode: r.mode,
      });
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

export function summarize(reports: Report[], findings: Finding[]): Summary {
  const totals: Counts = { returned: 0, error: 0, unclear: 0, nonError: 0 };
  for (const r of reports) totals[r.outcome] = (totals[r.outcome] ?? 0) + 1;
  for (const k of ["crash", "hang", "no-exit", "abnormal-exit", "stray", "leak"] as const)
    totals[k] = findings.filter((f) => f.kind === k).length;
  const unclear = messages(reports, (r) => r.outcome === "unclear");
  return {
    totals,
    byTarget: tally(reports, findings),
    findings,
    unclearDistinct: unclear.length,
    unclearMessages: unclear.slice(0, 100),
    // What a user of each reader is told: read these to judge whether the messages say what to do.
    readerMessages: messages(reports, (r) => r.mode === "readers" && r.outcome !== "returned").slice(0, 200),
  };
}

export function printSummary(title: string, s: Summary): void {
  console.log(`\n${title}`);
  console.log(
    Object.entries(s.totals)
      .map(([k, v]) => `${k} ${v}`)
      .join(", "),
  );
  // Readers one line each; ops by kind (export:, method:, nn:, native:); each target is in the file.
  const byGroup: Record<string, Counts> = {};
  for (const [target, counts] of Object.entries(s.byTarget))
    for (const [k, v] of Object.entries(counts))
      bump(byGroup, target.includes(":") ? `${target.split(":")[0]}:*` : target, k, v);
  for (const [group, counts] of Object.entries(byGroup).sort((a, b) => (b[1].cases ?? 0) - (a[1].cases ?? 0)))
    console.log(`  ${group.padEnd(14)} ${JSON.stringify(counts)}`);
  console.log(`findings: ${s.findings.length}`);
  for (const f of s.findings.slice(0, 40)) {
    const where = f.isolated ? "" : " (only after other cases)";
    console.log(`  ${f.kind} ${f.target} seed ${f.seed}${where}: ${f.detail.slice(0, 200)}`);
    if (f.how) console.log(`      ${f.how.slice(0, 200)}`);
    console.log(`      replay: ${f.replay}`);
  }
  console.log(`unclear (engine) error messages: ${s.unclearDistinct} distinct`);
  for (const u of s.unclearMessages.slice(0, 15))
    console.log(`  ${u.count}x ${u.target}: ${u.errorName}: ${u.message.slice(0, 140)} (seed ${u.seed})`);
}
