export const meta = {
  name: 'multi-review',
  description: 'Reviews a target for code health, security and standards in parallel, merges the findings, verifies each one and reports',
  whenToUse: 'Before merging a change, or to audit a file or module from several angles at once',
  phases: [
    { title: 'Review', detail: 'code-health, security and standards reviews, in parallel' },
    { title: 'Merge', detail: 'plain JavaScript: de-duplicate the findings' },
    { title: 'Verify', detail: 'each remaining finding is checked on its own' },
    { title: 'Report', detail: 'a short report of the confirmed findings' },
  ],
  args: {
    type: 'object',
    properties: {
      target: { type: 'string', minLength: 1, description: 'A path, a diff, or a description of what to review' },
    },
    required: ['target'],
    examples: [{ target: 'src/main.rs' }],
  },
};

const findingsSchema = {
  type: 'object',
  properties: {
    findings: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          title: { type: 'string' },
          severity: { type: 'string', enum: ['high', 'medium', 'low'] },
          location: { type: 'string' },
          detail: { type: 'string' },
        },
        required: ['title', 'severity', 'location', 'detail'],
      },
    },
  },
  required: ['findings'],
}
const LENSES = {
  'code-health': 'correctness bugs, error handling, complexity and dead code',
  security: 'injection, unsafe input handling, secrets, authentication and authorisation',
  standards: 'naming, documentation, tests and the conventions of the surrounding code',
}

// Review: the merge needs every review, so a barrier (parallel) is right here.
phase('Review')
const reviews = await parallel(
  Object.entries(LENSES).map(([lens, focus]) => () =>
    agent(`Review the target below for ${focus}. Report only concrete findings with a location.\n\nTarget: ${args.target}`, {
      label: `${lens} review`,
      schema: findingsSchema,
    }).then((r) => r.findings.map((f) => ({ ...f, lens }))),
  ),
)

// Merge: the same issue found by two reviews counts once (plain JS, no tokens).
phase('Merge')
const key = (f) => `${f.title}|${f.location}`.toLowerCase().replace(/\s+/g, ' ').trim()
const merged = new Map()
for (const f of reviews.filter(Boolean).flat()) {
  const seen = merged.get(key(f))
  if (seen) seen.lenses.push(f.lens)
  else merged.set(key(f), { title: f.title, severity: f.severity, location: f.location, detail: f.detail, lenses: [f.lens] })
}
const candidates = [...merged.values()]
log(`${candidates.length} distinct finding(s) from ${reviews.filter(Boolean).length} review(s)`)

// Verify: each finding on its own, no barrier between them.
phase('Verify')
const verified = await pipeline(candidates, (f, _item, i) =>
  agent(
    `Check whether this review finding is real. Confirm it only if the target shows it.\n\nTarget: ${args.target}\nFinding: ${f.title} at ${f.location}: ${f.detail}`,
    {
      label: `verify ${i + 1}`,
      schema: { type: 'object', properties: { confirmed: { type: 'boolean' }, reason: { type: 'string' } }, required: ['confirmed', 'reason'] },
    },
  ).then((v) => ({ ...f, confirmed: v.confirmed, reason: v.reason })),
)
const confirmed = verified.filter((f) => f && f.confirmed)

phase('Report')
const report = confirmed.length === 0
  ? 'No confirmed findings.'
  : await agent(
      `Write a short review report (markdown) of these confirmed findings, most severe first.\n\n${confirmed
        .map((f) => `- [${f.severity}] ${f.title} (${f.location}): ${f.detail}`)
        .join('\n')}`,
      { label: 'report' },
    )
return { target: args.target, findings: confirmed, rejected: verified.filter((f) => f && !f.confirmed).length, report }
