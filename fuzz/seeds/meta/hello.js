export const meta = {
  name: 'hello',
  description: 'Asks two agents for a one-line greeting about a topic, in parallel, then merges them',
  whenToUse: 'A first run: checks that booflow and an agent are configured and shows fan-out and reduce',
  phases: [
    { title: 'Greet', detail: 'two agents greet the topic in parallel' },
    { title: 'Merge', detail: 'one agent merges the greetings' },
  ],
  args: {
    type: 'object',
    properties: {
      topic: { type: 'string', description: 'What the greetings are about' },
    },
    examples: [{ topic: 'WebAssembly sandboxes' }],
  },
}

// Fan out: two independent agent calls behind a barrier.
phase('Greet')
const topic = (args && args.topic) || 'booflow'
const [warm, witty] = await parallel([
  () => agent(`Write one warm, friendly sentence greeting a newcomer to ${topic}.`, { label: 'warm greeting' }),
  () => agent(`Write one witty sentence greeting a newcomer to ${topic}.`, { label: 'witty greeting' }),
])

// Reduce: one call sees both answers.
phase('Merge')
const merged = await agent(
  `Merge these two greetings into a single sentence:\n1. ${warm}\n2. ${witty}`,
  { label: 'merge' },
)
log(`merged ${[warm, witty].filter(Boolean).length} greetings`)
return { topic, greetings: [warm, witty], merged }
