export const meta = {
  name: 'bounty-hunt',
  description: 'Scans a target for vulnerabilities with four distinct focuses in parallel, then verifies each finding and rates its severity',
  whenToUse: 'A security pass over code before a release or an external audit',
  phases: [
    { title: 'Scan', detail: 'injection, authn/z, crypto and business-logic scans, in parallel' },
    { title: 'Verify', detail: 'each finding is verified and rated on its own' },
  ],
  args: {
    type: 'object',
    properties: {
      target: { type: 'string', minLength: 1, description: 'A path, a diff, or a description of the system to scan' },
    },
    required: ['target'],
    examples: [{ target: 'src/server/' }],
  },
};

const FOCUSES = {
  injection: 'injection: SQL, shell, path traversal, template and deserialisation',
  authz: 'authentication and authorisation: missing checks, privilege escalation, session handling',
  crypto: 'cryptography: weak algorithms, hard-coded keys, bad randomness, missing verification',
  'business-logic': 'business logic: races, double spends, broken invariants, abuse of legitimate features',
}
const scanSchema = {
  type: 'object',
  properties: {
    findings: {
      type: 'array',
      items: {
        type: 'object',
        properties: { title: { type: 'string' }, location: { type: 'string' }, evidence: { type: 'string' } },
        required: ['title', 'location', 'evidence'],
      },
    },
  },
  required: ['findings'],
}

phase('Scan')
const scans = await parallel(
  Object.entries(FOCUSES).map(([focus, what]) => () =>
    agent(`Hunt for vulnerabilities in the target, looking only at ${what}. Report each with its location and evidence.\n\nTarget: ${args.target}`, {
      label: `scan ${focus}`,
      schema: scanSchema,
    }).then((r) => r.findings.map((f) => ({ ...f, focus }))),
  ),
)
const candidates = scans.filter(Boolean).flat()
log(`${candidates.length} candidate finding(s) from ${scans.filter(Boolean).length} of ${scans.length} scans`)

phase('Verify')
const verdicts = await pipeline(candidates, (f, _item, i) =>
  agent(
    `Verify this candidate vulnerability. Confirm it only with a plausible exploit path, and rate its severity.\n\nTarget: ${args.target}\nFocus: ${f.focus}\nFinding: ${f.title} at ${f.location}\nEvidence: ${f.evidence}`,
    {
      label: `verify ${f.focus} ${i + 1}`,
      schema: {
        type: 'object',
        properties: {
          confirmed: { type: 'boolean' },
          severity: { type: 'string', enum: ['critical', 'high', 'medium', 'low'] },
          exploit: { type: 'string' },
        },
        required: ['confirmed', 'severity', 'exploit'],
      },
    },
  ).then((v) => ({ ...f, ...v })),
)
const rank = { critical: 0, high: 1, medium: 2, low: 3 }
const findings = verdicts.filter((v) => v && v.confirmed).sort((a, b) => rank[a.severity] - rank[b.severity])
return { target: args.target, scanned: Object.keys(FOCUSES), candidates: candidates.length, findings }
