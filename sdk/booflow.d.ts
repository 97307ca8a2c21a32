// Typings for booflow workflow scripts (Claude Code Workflow format, DESIGN.md §1).
// Everything here is a global; nothing is imported. Items marked "booflow extension" do not
// exist under Claude Code.

/** JSON Schema, as accepted by agent({schema}) and meta.args. */
type JsonSchema = { [key: string]: unknown } | boolean;

interface WorkflowMeta {
  name: string;
  description: string;
  whenToUse?: string;
  phases?: { title: string; detail?: string; model?: string }[];
  /** booflow extension: JSON Schema of the run's input; validated before the run starts. */
  args?: JsonSchema;
}

interface AgentOptions {
  /** Display label (not part of the content key). */
  label?: string;
  /** Phase override (not part of the content key). */
  phase?: string;
  /** Resolve to a JSON value validated against this schema (2 repair turns). */
  schema?: JsonSchema;
  /** Model name or alias from [models]. */
  model?: string;
  /** Run in a fresh git worktree based on HEAD. */
  isolation?: 'worktree';
  /** A configured agent name; unknown names throw, listing the configured ones. */
  agentType?: string;
  /** Abort and retry after this many ms without progress (default 180000, 5 retries). */
  stallMs?: number;
  effort?: string;
  tools?: string[];
  /** booflow extension: resolve to AgentDetail instead of the bare output. */
  detail?: boolean;
}

/** booflow extension: what agent(prompt, {detail: true}) resolves to. */
interface AgentDetail<T = unknown> {
  output: T;
  usage: { input_tokens: number; output_tokens: number; cached_tokens: number };
  duration_ms: number;
  cached: boolean;
  worktree?: { branch: string; diff: string };
}

/** One fresh-context agent call: the final text, or with a schema a JSON value. Null when skipped or stalled out. */
declare function agent(prompt: string, opts?: AgentOptions): Promise<any>;
/** Runs thunks concurrently behind a barrier; a thunk that throws gives null. Never rejects. */
declare function parallel<T>(thunks: (() => Promise<T> | T)[]): Promise<(T | null)[]>;
/** Each item flows through every stage independently; a throwing stage drops that item to null. */
declare function pipeline(items: unknown[], ...stages: ((prev: any, item: any, index: number) => any)[]): Promise<any[]>;
/** Starts a progress group; later agents join it. */
declare function phase(title: string): void;
/** A narrator line in the run log. */
declare function log(...message: unknown[]): void;
/** Runs another workflow inline (one level of nesting), sharing budget, cap and cancellation. */
declare function workflow(nameOrRef: string | { scriptPath: string }, args?: unknown): Promise<any>;
/** booflow extension: a named output kept with the run. */
declare function artifact(name: string, content: unknown): void;
/** booflow extension: the options of ask(). Any other key rejects with WorkflowInputError. */
interface AskOptions {
  /** The answer is one of these strings (arrow keys on a terminal, buttons in the pane). */
  choices?: string[];
  /** The answer must satisfy this JSON Schema (the pane builds a form from it). */
  schema?: JsonSchema;
  /** Taken with `booflow run --yes`, or when timeoutMs passes. */
  default?: unknown;
  /** Milliseconds to wait for a person; then the default, or a rejection. */
  timeoutMs?: number;
  /** How `--answers FILE.json` names this question, and its title. */
  label?: string;
}

/** booflow extension: pauses the script until a person answers; resolves to the answer. The run is `waiting` meanwhile. */
declare function ask(question: string, opts?: AskOptions): Promise<any>;
/** The run's token budget; total is null without one. */
declare const budget: { readonly total: number | null; spent(): number; remaining(): number };
/** The run's input exactly as given. */
declare const args: any;

declare class WorkflowAgentCapError extends Error {}
declare class WorkflowBudgetExceededError extends Error {}
declare class WorkflowInputError extends Error {}
declare class WorkflowAbortError extends Error {}
declare class WorkflowSandboxError extends Error {}
declare class WorkflowAgentError extends Error {}
