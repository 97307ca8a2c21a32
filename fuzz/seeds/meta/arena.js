export const meta = {
  name: 'arena',
  description: 'One prompt against 2–6 contestants (agents or models): timed and measured, digested, judged, optionally cross-examined',
  whenToUse: 'Comparing agents or models on the same task, question or coding battle',
  phases: [
    { title: 'Battle', detail: 'every contestant answers; local lane one after another, cloud lane in parallel, both at once' },
    { title: 'Digest', detail: 'a digest of each answer' },
    { title: 'Judge', detail: 'ranking, winner and rationale' },
    { title: 'Cross-examination', detail: 'optional: the runner-up questions the winner' },
  ],
  args: {
    type: 'object',
    properties: {
      prompt: { type: 'string', minLength: 1, description: 'The task or question every contestant gets' },
      type: { type: 'string', enum: ['qa', 'coding'], description: 'coding battles run each contestant in its own git worktree' },
      contestants: {
        type: 'array',
        minItems: 2,
        maxItems: 6,
        items: {
          type: 'object',
          properties: {
            agent: { type: 'string', description: 'A configured agent (default: the default agent)' },
            model: { type: 'string', description: 'A model name or alias passed to the agent' },
            lane: { type: 'string', enum: ['local', 'cloud'], description: 'local: one at a time; cloud: in parallel (default)' },
          },
        },
      },
      cross_examine: { type: 'boolean', description: 'Let the runner-up cross-examine the winner' },
    },
    required: ['prompt', 'type', 'contestants'],
    examples: [
      {
        prompt: 'Explain in three sentences why content-addressed caches make resumable workflows cheap.',
        type: 'qa',
        contestants: [{ model: 'fast' }, { model: 'smart' }, { model: 'local-model', lane: 'local' }],
        cross_examine: true,
      },
    ],
  },
};

const contestants = args.contestants.map((c, i) => ({ id: `c${i + 1}`, agent: c.agent ?? null, model: c.model ?? null, lane: c.lane ?? 'cloud' }))
const coding = args.type === 'coding'

async function fight(c) {
  const opts = { label: `contestant ${c.id}`, detail: true }
  if (c.agent) opts.agentType = c.agent
  if (c.model) opts.model = c.model
  if (coding) opts.isolation = 'worktree'
  try {
    const r = await agent(args.prompt, opts)
    if (r === null) return { ...c, status: 'failed', output: null, duration_ms: 0, output_tokens: 0, tokens_per_sec: 0 }
    const seconds = r.duration_ms / 1000
    const result = {
      ...c,
      status: 'completed',
      output: r.output,
      duration_ms: r.duration_ms,
      output_tokens: r.usage.output_tokens,
      tokens_per_sec: seconds > 0 ? Math.round((r.usage.output_tokens / seconds) * 10) / 10 : 0,
      cached: r.cached,
    }
    if (coding) result.diff = r.worktree ? r.worktree.diff : ''
    return result
  } catch (e) {
    log(`contestant ${c.id} failed: ${e.message}`)
    return { ...c, status: 'failed', output: null, duration_ms: 0, output_tokens: 0, tokens_per_sec: 0, error: e.message }
  }
}

// Battle: the local lane one after another, the cloud lane in parallel, both lanes at once.
phase('Battle')
const local = contestants.filter((c) => c.lane === 'local')
const cloud = contestants.filter((c) => c.lane !== 'local')
const localLane = (async () => {
  const out = []
  for (const c of local) out.push(await fight(c))
  return out
})()
const [localResults, cloudResults] = await Promise.all([localLane, parallel(cloud.map((c) => () => fight(c)))])
const byId = new Map([...localResults, ...cloudResults].filter(Boolean).map((r) => [r.id, r]))
const results = contestants.map((c) => byId.get(c.id) ?? { ...c, status: 'failed', output: null, duration_ms: 0, output_tokens: 0, tokens_per_sec: 0 })
const finished = results.filter((r) => r.status === 'completed')

// Digest each answer on its own, then one judge sees the digests and the answers.
phase('Digest')
const digestSchema = {
  type: 'object',
  properties: { summary: { type: 'string' }, strengths: { type: 'array', items: { type: 'string' } }, weaknesses: { type: 'array', items: { type: 'string' } } },
  required: ['summary', 'strengths', 'weaknesses'],
}
const digests = await pipeline(finished, (r) =>
  agent(`Digest this answer to the task. Summarise it and list its strengths and weaknesses.\n\nTask: ${args.prompt}\n\nAnswer (${r.id}):\n${r.output}${r.diff ? `\n\nDiff:\n${r.diff}` : ''}`, {
    label: `digest ${r.id}`,
    schema: digestSchema,
  }).then((d) => ({ id: r.id, ...d })),
)

let analysis = { digests: digests.filter(Boolean), ranking: finished.map((r) => r.id), winner: finished[0]?.id ?? null, rationale: 'only one contestant finished' }
if (finished.length > 1) {
  phase('Judge')
  const ids = finished.map((r) => r.id)
  const verdict = await agent(
    `Judge these answers to the task. Rank all of them, best first, name the winner and explain why.\n\nTask: ${args.prompt}\n\n${finished
      .map((r) => `## ${r.id}\n${r.output}\n\nDigest: ${JSON.stringify(digests.find((d) => d && d.id === r.id) ?? null)}`)
      .join('\n\n')}`,
    {
      label: 'judge',
      schema: {
        type: 'object',
        properties: {
          ranking: { type: 'array', items: { type: 'string', enum: ids }, minItems: 1 },
          winner: { type: 'string', enum: ids },
          rationale: { type: 'string' },
        },
        required: ['ranking', 'winner', 'rationale'],
      },
    },
  ).catch((e) => {
    // No verdict is still a result: keep the order they finished in, and say why.
    log(`the judge failed: ${e.message}`)
    return { ranking: ids, winner: ids[0], rationale: `no verdict: the judge failed (${e.message.split('\n')[0]})` }
  })
  // A ranking names every finished contestant once, the winner first.
  const ranking = [verdict.winner, ...verdict.ranking, ...ids].filter((id, i, all) => all.indexOf(id) === i)
  analysis = { digests: analysis.digests, ranking, winner: verdict.winner, rationale: verdict.rationale }
}

const out = { battle: { prompt: args.prompt, type: args.type }, contestants: results, analysis }
if (args.cross_examine && analysis.ranking.length > 1) {
  phase('Cross-examination')
  const winner = byId.get(analysis.ranking[0])
  const runnerUp = byId.get(analysis.ranking[1])
  const opts = { label: `cross-examination ${runnerUp.id} → ${winner.id}` }
  if (runnerUp.agent) opts.agentType = runnerUp.agent
  if (runnerUp.model) opts.model = runnerUp.model
  const critique = await agent(`You lost this round. Cross-examine the winning answer: find its weakest claims and say what it misses.\n\nTask: ${args.prompt}\n\nWinning answer:\n${winner.output}`, opts)
  out.cross_examination = { by: runnerUp.id, of: winner.id, critique }
}

artifact('manifest.json', { battle: out.battle, contestants: results.map(({ output, diff, ...rest }) => rest), analysis: { ranking: analysis.ranking, winner: analysis.winner, rationale: analysis.rationale } })
for (const r of results) if (r.output !== null) artifact(`${r.id}.${coding ? 'diff' : 'txt'}`, coding ? r.diff || r.output : r.output)
return out
