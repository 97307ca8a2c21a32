export const meta = {
  name: 'plan-verify',
  description: 'Plans toward a goal, has the plan critiqued, revises it until the critique passes, then lists work items',
  whenToUse: 'Before starting work whose plan should survive a skeptical review',
  phases: [
    { title: 'Plan', detail: 'a step-by-step plan for the goal' },
    { title: 'Verify', detail: 'a critique with a pass/fail verdict; revisions while it fails (at most 3 rounds)' },
    { title: 'Work items', detail: 'the verified plan as work items with acceptance criteria' },
  ],
  args: {
    type: 'object',
    properties: {
      goal: { type: 'string', minLength: 1, description: 'What the plan should achieve' },
    },
    required: ['goal'],
    examples: [{ goal: 'Add a --dry-run flag to a CLI that deletes files' }],
  },
};

const MAX_ROUNDS = 3
const planSchema = {
  type: 'object',
  properties: {
    steps: {
      type: 'array',
      minItems: 1,
      items: { type: 'object', properties: { title: { type: 'string' }, detail: { type: 'string' } }, required: ['title', 'detail'] },
    },
  },
  required: ['steps'],
}
const verdictSchema = {
  type: 'object',
  properties: {
    verdict: { type: 'string', enum: ['pass', 'fail'] },
    issues: { type: 'array', items: { type: 'string' } },
  },
  required: ['verdict', 'issues'],
}
const show = (plan) => plan.steps.map((s, i) => `${i + 1}. ${s.title}: ${s.detail}`).join('\n')

phase('Plan')
let plan = await agent(`Write a concrete step-by-step plan to achieve this goal.\n\nGoal: ${args.goal}`, { label: 'plan', schema: planSchema })

// Verify, and revise while the verdict fails: bounded by rounds and by the budget.
phase('Verify')
const verdicts = []
for (let round = 1; round <= MAX_ROUNDS; round++) {
  if (budget.total !== null && budget.remaining() < 2000) {
    log('budget nearly spent: stopping the review here')
    break
  }
  const v = await agent(
    `Critique this plan for the goal. Fail it if a step is missing, wrong or unverifiable; list the issues.\n\nGoal: ${args.goal}\n\nPlan:\n${show(plan)}`,
    { label: `verify ${round}`, schema: verdictSchema },
  )
  verdicts.push({ round, ...v })
  if (v.verdict === 'pass') break
  if (round === MAX_ROUNDS) {
    log(`the plan still fails after ${MAX_ROUNDS} rounds; going on with the last revision`)
    break
  }
  plan = await agent(
    `Revise the plan to fix these issues.\n\nGoal: ${args.goal}\n\nPlan:\n${show(plan)}\n\nIssues:\n${v.issues.map((i) => `- ${i}`).join('\n')}`,
    { label: `revise ${round}`, schema: planSchema },
  )
}

phase('Work items')
const items = await agent(
  `Turn this plan into work items, each with a title and how to tell it is done.\n\nPlan:\n${show(plan)}`,
  {
    label: 'work items',
    schema: {
      type: 'object',
      properties: {
        items: {
          type: 'array',
          minItems: 1,
          items: { type: 'object', properties: { title: { type: 'string' }, acceptance: { type: 'string' } }, required: ['title', 'acceptance'] },
        },
      },
      required: ['items'],
    },
  },
)
const passed = verdicts.length > 0 && verdicts[verdicts.length - 1].verdict === 'pass'
return { goal: args.goal, plan: plan.steps, verdicts, verified: passed, items: items.items }
