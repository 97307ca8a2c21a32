// The args editor: a JSON textarea (always present) plus, when the workflow's meta.args is
// an object schema, a generated form for its primitive properties. Both stay in sync: the
// form writes into the JSON, the JSON updates the form. Validation is advisory (it shows a
// message and disables nothing); the server validates again and names the failing field.

import { el } from './ui.js';

/** Short messages for the ways `value` misses `schema` (object schemas, primitives only). */
export function validateArgs(schema, value) {
  if (!isObjectSchema(schema)) return [];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return ['args must be a JSON object'];
  const problems = [];
  for (const name of schema.required || []) {
    if (!(name in value)) problems.push(`missing required field "${name}"`);
  }
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    if (!(name in value) || !prop || typeof prop !== 'object') continue;
    const v = value[name];
    const types = prop.type === undefined ? [] : [].concat(prop.type);
    if (types.length && !types.some((t) => hasType(v, t))) {
      problems.push(`"${name}" should be ${types.map(article).join(' or ')}`);
    } else if (Array.isArray(prop.enum) && !prop.enum.some((e) => JSON.stringify(e) === JSON.stringify(v))) {
      problems.push(`"${name}" must be one of ${prop.enum.map((e) => JSON.stringify(e)).join(', ')}`);
    }
  }
  return problems;
}

function isObjectSchema(schema) {
  return Boolean(schema && typeof schema === 'object' && (schema.type === 'object' || schema.properties));
}

function hasType(v, type) {
  switch (type) {
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'integer': return Number.isInteger(v);
    case 'boolean': return typeof v === 'boolean';
    case 'array': return Array.isArray(v);
    case 'object': return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'null': return v === null;
    default: return true;
  }
}

const article = (t) => (t === 'integer' || t === 'array' || t === 'object' ? `an ${t}` : t === 'null' ? 'null' : `a ${t}`);

/** Which form control a property gets, or null when it is edited in the JSON only. */
function controlKind(prop) {
  if (!prop || typeof prop !== 'object') return null;
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== 'null') : prop.type;
  if (type === 'string') return Array.isArray(prop.enum) ? 'enum' : 'text';
  if (type === 'number' || type === 'integer') return type;
  if (type === 'boolean') return 'boolean';
  return null;
}

export class ArgsEditor {
  /** `root` receives the form, the textarea and the validation line. */
  constructor(root) {
    this.schema = null;
    this.controls = new Map(); // property name → {kind, input}
    this.lastObject = {}; // the last args object that parsed, the base for form edits
    this.form = el('div', { class: 'args-form', 'data-testid': 'args-form' });
    this.textarea = el('textarea', {
      'data-testid': 'args-editor',
      id: 'args-json',
      class: 'args-json',
      spellcheck: 'false',
      rows: '8',
      placeholder: 'args as JSON (optional)',
      'aria-label': 'workflow args (JSON)',
      oninput: () => this.onText(),
    });
    this.message = el('div', { class: 'args-validation', 'data-testid': 'args-validation', role: 'status' });
    this.extra = el('div', { class: 'args-extra muted' });
    root.append(this.form, el('label', { class: 'field-label', for: 'args-json' }, 'Args (JSON)'), this.textarea, this.message, this.extra);
  }

  /** Show the editor for a workflow's meta.args (a JSON Schema or null). */
  setSchema(schema) {
    this.schema = isObjectSchema(schema) ? schema : null;
    let initial = '';
    if (schema && Array.isArray(schema.examples) && schema.examples.length) initial = JSON.stringify(schema.examples[0], null, 2);
    else if (schema) initial = '{}';
    this.textarea.value = initial;
    this.buildForm();
    this.onText();
  }

  buildForm() {
    this.form.replaceChildren();
    this.controls.clear();
    this.extra.replaceChildren();
    if (!this.schema) return;
    const required = new Set(this.schema.required || []);
    const jsonOnly = [];
    for (const [name, prop] of Object.entries(this.schema.properties || {})) {
      const kind = controlKind(prop);
      if (!kind) {
        jsonOnly.push(name);
        continue;
      }
      const id = `arg-${name.replace(/[^\w-]/g, '_')}`;
      let input;
      if (kind === 'enum') {
        input = el('select', { id }, el('option', { value: '' }, '—'), prop.enum.map((v) => el('option', { value: String(v) }, String(v))));
      } else if (kind === 'boolean') {
        input = el('input', { id, type: 'checkbox' });
      } else if (kind === 'text') {
        input = el('input', { id, type: 'text', placeholder: prop.default !== undefined ? String(prop.default) : null });
      } else {
        input = el('input', { id, type: 'number', step: kind === 'integer' ? '1' : 'any' });
      }
      input.dataset.arg = name;
      input.addEventListener(kind === 'text' || kind === 'number' || kind === 'integer' ? 'input' : 'change', () => this.onControl(name));
      this.controls.set(name, { kind, input, prop });
      const label = el('label', { for: id, class: 'arg-name' }, name, required.has(name) ? el('span', { class: 'req', title: 'required' }, '*') : null);
      const row = el('div', { class: `arg-row kind-${kind}` });
      if (kind === 'boolean') row.append(el('div', { class: 'arg-check' }, input, label));
      else row.append(label, input);
      if (prop.description) row.append(el('div', { class: 'arg-desc' }, prop.description));
      this.form.append(row);
    }
    if (jsonOnly.length) this.extra.append(`Edit in the JSON: ${jsonOnly.join(', ')}`);
  }

  /** Parse the textarea: {ok, value} (value undefined when empty) or {ok:false, error}. */
  parse() {
    const text = this.textarea.value.trim();
    if (!text) return { ok: true, value: this.schema ? {} : undefined, empty: true };
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (e) {
      return { ok: false, error: `invalid JSON: ${e.message}` };
    }
  }

  onText() {
    const parsed = this.parse();
    if (parsed.ok && parsed.value && typeof parsed.value === 'object' && !Array.isArray(parsed.value)) {
      this.lastObject = parsed.value;
      this.fillControls(parsed.value);
    }
    this.validate(parsed);
  }

  fillControls(obj) {
    for (const [name, { kind, input }] of this.controls) {
      const v = obj[name];
      if (kind === 'boolean') input.checked = v === true;
      else if (kind === 'number' || kind === 'integer') {
        const want = typeof v === 'number' ? String(v) : '';
        // Leave a half-typed number ("1.", "-") alone when it already means the same value.
        if (input.value === '' || Number(input.value) !== v) input.value = want;
      } else if (kind === 'enum') input.value = v === undefined ? '' : String(v);
      else {
        const want = typeof v === 'string' ? v : v === undefined ? '' : JSON.stringify(v);
        if (input.value !== want) input.value = want;
      }
    }
  }

  onControl(name) {
    const parsed = this.parse();
    const base = parsed.ok && parsed.value && typeof parsed.value === 'object' && !Array.isArray(parsed.value) ? parsed.value : this.lastObject;
    const obj = { ...base };
    const { kind, input, prop } = this.controls.get(name);
    if (kind === 'boolean') obj[name] = input.checked;
    else if (kind === 'number' || kind === 'integer') {
      if (input.value === '' || Number.isNaN(input.valueAsNumber)) delete obj[name];
      else obj[name] = input.valueAsNumber;
    } else if (kind === 'enum') {
      if (input.value === '') delete obj[name];
      else obj[name] = prop.enum.find((e) => String(e) === input.value);
    } else if (input.value === '') delete obj[name];
    else obj[name] = input.value;
    this.lastObject = obj;
    this.textarea.value = JSON.stringify(obj, null, 2);
    this.validate({ ok: true, value: obj });
  }

  validate(parsed) {
    const problems = parsed.ok ? validateArgs(this.schema, parsed.value) : [parsed.error];
    this.message.replaceChildren(...problems.map((p) => el('div', {}, p)));
    this.message.classList.toggle('has-problems', problems.length > 0);
    this.textarea.classList.toggle('invalid', !parsed.ok);
    return problems;
  }
}
