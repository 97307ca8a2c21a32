export const meta = {
  name: 'deep-research',
  description: 'Plans sub-questions, researches and analyses each, then writes a report that cites the sub-answers',
  whenToUse: 'A question that needs several angles investigated before it can be answered well',
  phases: [
    { title: 'Plan', detail: 'split the question into focused sub-questions' },
    { title: 'Research', detail: 'research each sub-question, then analyse what was found' },
    { title: 'Synthesis', detail: 'one report citing the sub-answers as [n]' },
  ],
  args: {
    type: 'object',
    properties: {
      question: { type: 'string', minLength: 1, description: 'The question to research' },
      breadth: { type: 'integer', minimum: 1, maximum: 8, description: 'How many sub-questions (default 3)' },
    },
    required: ['question'],
    examples: [{ question: 'How do WebAssembly runtimes bound the CPU time of untrusted code?', breadth: 3 }],
  },
};

const breadth = args.breadth ?? 3

// Plan: exactly `breadth` sub-questions, as structured output.
phase('Plan')
const plan = await agent(
  `Break this question into exactly ${breadth} focused, non-overlapping sub-questions that together answer it.\n\nQuestion: ${args.question}`,
  {
    label: 'plan',
    schema: {
      type: 'object',
      properties: {
        subquestions: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: breadth, maxItems: breadth },
      },
      required: ['subquestions'],
    },
  },
)

// Research: each sub-question flows through research then analysis on its own (no barrier).
phase('Research')
const analysis = {
  type: 'object',
  properties: {
    claims: { type: 'array', items: { type: 'string' }, minItems: 1 },
    confidence: { type: 'string', enum: ['high', 'medium', 'low'] },
  },
  required: ['claims', 'confidence'],
}
const findings = await pipeline(
  plan.subquestions,
  (question, _item, i) =>
    agent(`Research this sub-question and write concise notes with the evidence you rely on.\n\nSub-question: ${question}`, {
      label: `research ${i + 1}`,
    }),
  async (notes, question, i) => {
    const a = await agent(
      `Analyse these research notes. List the key claims they support and how confident you are overall.\n\nSub-question: ${question}\n\nNotes:\n${notes}`,
      { label: `analyse ${i + 1}`, schema: analysis },
    )
    return { id: i + 1, question, notes, claims: a.claims, confidence: a.confidence }
  },
)

// Synthesis: one report over the sub-answers that survived, cited as [n].
phase('Synthesis')
const answered = findings.filter(Boolean)
if (answered.length < findings.length) log(`${findings.length - answered.length} sub-question(s) failed and are left out`)
const sources = answered
  .map((f) => `[${f.id}] ${f.question} (confidence: ${f.confidence})\n${f.claims.map((c) => `- ${c}`).join('\n')}`)
  .join('\n\n')
const report = await agent(
  `Write a report that answers the question below from the sub-answers. Cite them as [n] after each claim you use.\n\nQuestion: ${args.question}\n\nSub-answers:\n${sources}`,
  { label: 'report' },
)
return { question: args.question, subquestions: plan.subquestions, findings: answered, report }
