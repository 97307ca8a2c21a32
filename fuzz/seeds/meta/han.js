export const meta = {
  name: 'han',
  description: 'The Han analysis: recon, lens analyses in parallel, a deterministic merge and ranking, verification of the top findings and a markdown report',
  whenToUse: 'A fixed, repeatable analysis of a codebase or module whose breadth you choose with a size band',
  phases: [
    { title: 'Recon', detail: 'map the target' },
    { title: 'Lenses', detail: 'small 2, medium 4, large 6 lenses, in parallel' },
    { title: 'Merge', detail: 'plain JavaScript: merge and rank the findings' },
    { title: 'Verify', detail: 'the top findings (small 3, medium 6, large 10), each on its own' },
    { title: 'Report', detail: 'a markdown report' },
  ],
  args: {
    type: 'object',
    properties: {
      target: { type: 'string', minLength: 1, description: 'What to analyse: a path, a module, a repository' },
      band: { type: 'string', enum: ['small', 'medium', 'large'], description: 'Breadth of the analysis' },
      focus: { type: 'string', description: 'Optional: what to pay most attention to' },
    },
    required: ['target', 'band'],
    examples: [{ target: 'engine/', band: 'small' }],
  },
};

// The shape is fixed by the band: the same band always runs the same steps.
const LENSES = ['architecture', 'correctness', 'security', 'performance', 'tests', 'maintainability']
const BANDS = { small: { lenses: 2, verify: 3 }, medium: { lenses: 4, verify: 6 }, large: { lenses: 6, verify: 10 } }
const band = BANDS[args.band]
const lenses = LENSES.slice(0, band.lenses)
const focus = args.focus ? `\nPay most attention to: ${args.focus}` : ''

const steps = [
  { step_id: 'recon', label: 'Recon', kind: 'agent', status: 'pending' },
  ...lenses.map((l) => ({ step_id: `lens-${l}`, label: `Lens: ${l}`, kind: 'agent', status: 'pending' })),
  { step_id: 'merge', label: 'Merge and rank', kind: 'code', status: 'pending' },
  ...Array.from({ length: band.verify }, (_, i) => ({ step_id: `verify-${i + 1}`, label: `Verify #${i + 1}`, kind: 'agent', status: 'pending' })),
  { step_id: 'report', label: 'Report', kind: 'code', status: 'pending' },
]
const step = (id) => steps.find((s) => s.step_id === id)
log(`han ${args.band}: ${steps.map((s) => s.step_id).join(', ')}`)

phase('Recon')
const recon = await agent(`Map this target for an analysis: its parts, entry points and dependencies. Be brief.\n\nTarget: ${args.target}${focus}`, {
  label: 'recon',
})
step('recon').status = recon === null ? 'failed' : 'completed'

phase('Lenses')
const findingSchema = {
  type: 'object',
  properties: {
    findings: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          title: { type: 'string' },
          impact: { type: 'integer', minimum: 1, maximum: 5 },
          location: { type: 'string' },
          detail: { type: 'string' },
        },
        required: ['title', 'impact', 'location', 'detail'],
      },
    },
  },
  required: ['findings'],
}
const byLens = await parallel(
  lenses.map((lens) => () =>
    agent(`Analyse the target through the ${lens} lens. Report findings with an impact from 1 (minor) to 5 (severe).\n\nTarget: ${args.target}\nMap:\n${recon}${focus}`, {
      label: `lens ${lens}`,
      schema: findingSchema,
    }),
  ),
)
lenses.forEach((l, i) => (step(`lens-${l}`).status = byLens[i] === null ? 'failed' : 'completed'))

// Merge and rank in plain JS: same title and location count once; higher impact first,
// then the order of the lens list, so the ranking is deterministic.
phase('Merge')
const merged = new Map()
lenses.forEach((lens, order) => {
  for (const f of byLens[order]?.findings ?? []) {
    const key = `${f.title}|${f.location}`.toLowerCase()
    const seen = merged.get(key)
    if (seen) {
      seen.lenses.push(lens)
      seen.impact = Math.max(seen.impact, f.impact)
    } else merged.set(key, { ...f, lenses: [lens], order })
  }
})
const ranked = [...merged.values()].sort((a, b) => b.impact - a.impact || a.order - b.order)
step('merge').status = 'completed'

phase('Verify')
const top = ranked.slice(0, band.verify)
const checks = await pipeline(top, (f, _item, i) =>
  agent(`Verify this finding against the target. Confirm it only if it holds.\n\nTarget: ${args.target}\nFinding: ${f.title} at ${f.location}: ${f.detail}`, {
    label: `verify ${i + 1}`,
    schema: { type: 'object', properties: { confirmed: { type: 'boolean' }, note: { type: 'string' } }, required: ['confirmed', 'note'] },
  }),
)
for (let i = 0; i < band.verify; i++) {
  step(`verify-${i + 1}`).status = i >= top.length ? 'skipped' : checks[i] === null ? 'failed' : 'completed'
}
const findings = top.map((f, i) => ({
  title: f.title,
  impact: f.impact,
  location: f.location,
  detail: f.detail,
  lenses: f.lenses,
  verified: checks[i] ? checks[i].confirmed : null,
  note: checks[i] ? checks[i].note : null,
}))

phase('Report')
const lines = [
  `# Han analysis (${args.band}): ${args.target}`,
  '',
  `Lenses: ${lenses.join(', ')}. ${ranked.length} distinct finding(s); the top ${top.length} verified.`,
  '',
  ...findings.map(
    (f, i) =>
      `${i + 1}. **${f.title}** (impact ${f.impact}, ${f.lenses.join('/')}) at \`${f.location}\` — ${
        f.verified === null ? 'not verified' : f.verified ? 'confirmed' : 'not confirmed'
      }\n   ${f.detail}`,
  ),
]
const report = lines.join('\n')
step('report').status = 'completed'
return { band: args.band, steps, findings, report }
