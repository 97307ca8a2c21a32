// The answer forms of a run's open `ask()` questions (docs/DESIGN.md §1, §6): choices as
// buttons; a schema as the form the args editor builds (with its JSON beside it); else a
// text field (read as JSON when it parses). A refused answer shows the server's validation
// message under its form, and the question stays open.

import { el, setText } from './ui.js';
import { ArgsEditor } from './args.js';

/** @typedef {import('./types/QuestionRecord').QuestionRecord} QuestionRecord */

/** Text typed for an answer: JSON when it parses as JSON, else the text. */
function readAnswer(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class QuestionsView {
  /**
   * @param {HTMLElement} root
   * @param {(questionId: string, answer: unknown) => Promise<string | null>} answer sends an answer; the refusal's message, or null
   */
  constructor(root, answer) {
    this.root = root;
    this.answer = answer;
    /** @type {Map<string, HTMLElement>} question id → its form */
    this.forms = new Map();
  }

  /** @param {QuestionRecord[]} open the questions still open, in the order asked */
  render(open) {
    const ids = new Set(open.map((q) => q.question_id));
    for (const [id, form] of this.forms) {
      if (!ids.has(id)) {
        form.remove();
        this.forms.delete(id);
      }
    }
    for (const q of open) {
      if (!this.forms.has(q.question_id)) {
        const form = this.form(q);
        this.forms.set(q.question_id, form);
        this.root.append(form);
      }
    }
    this.root.hidden = this.forms.size === 0;
  }

  /** @param {QuestionRecord} q */
  form(q) {
    const error = el('div', { class: 'answer-error', 'data-testid': 'answer-error', role: 'alert' });
    const send = async (/** @type {unknown} */ value) => {
      setText(error, '');
      const refused = await this.answer(q.question_id, value);
      if (refused) setText(error, refused);
    };
    const title = el(
      'div',
      { class: 'question-text', 'data-testid': 'question-text' },
      q.label ? el('strong', {}, `${q.label}: `) : null,
      q.question,
    );
    const body = el('div', { class: 'answer-body' });
    if (q.choices) {
      for (const choice of q.choices) {
        const button = el('button', { class: 'btn', type: 'button', 'data-testid': 'answer-choice', 'data-choice': choice }, choice);
        button.addEventListener('click', () => send(choice));
        body.append(button);
      }
    } else if (q.schema) {
      const editor = new ArgsEditor(body);
      editor.setSchema(q.schema);
      if (q.default !== null && q.default !== undefined) editor.textarea.value = JSON.stringify(q.default, null, 2);
      editor.textarea.setAttribute('data-testid', 'answer-json');
      editor.textarea.setAttribute('aria-label', 'answer (JSON)');
      const submit = el('button', { class: 'btn primary', type: 'button', 'data-testid': 'answer-submit' }, 'Answer');
      submit.addEventListener('click', () => {
        const parsed = editor.parse();
        if (!parsed.ok) return setText(error, parsed.error);
        send(parsed.value === undefined ? null : parsed.value);
      });
      body.append(submit);
    } else {
      const input = el('input', { type: 'text', class: 'answer-text', 'data-testid': 'answer-json', 'aria-label': 'answer' });
      if (q.default !== null && q.default !== undefined) input.value = typeof q.default === 'string' ? q.default : JSON.stringify(q.default);
      const submit = el('button', { class: 'btn primary', type: 'button', 'data-testid': 'answer-submit' }, 'Answer');
      submit.addEventListener('click', () => send(readAnswer(input.value)));
      body.append(input, submit);
    }
    return el(
      'div',
      { class: 'question', 'data-testid': 'question', 'data-question': q.question_id },
      title,
      body,
      error,
    );
  }
}
