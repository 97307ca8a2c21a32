// A deliberately small markdown renderer for agent output and string results.
//
// It builds DOM nodes and sets text with text nodes only, so whatever an agent writes
// (including <script> or HTML) is shown literally. Supported: # .. ### headings,
// paragraphs, "- "/"* " and "1. " lists, ``` fenced code blocks, inline `code`, **bold**.

import { el } from './ui.js';

/** Render markdown `source` into a new <div class="md">. */
export function renderMarkdown(source) {
  const root = el('div', { class: 'md' });
  const lines = String(source).replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  let paragraph = [];
  let list = null; // { node, ordered }

  const flushParagraph = () => {
    if (paragraph.length) root.append(el('p', {}, inline(paragraph.join('\n'))));
    paragraph = [];
  };
  const closeList = () => {
    list = null;
  };

  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*```\s*([\w+-]*)\s*$/);
    if (fence) {
      flushParagraph();
      closeList();
      const code = [];
      i += 1;
      while (i < lines.length && !/^\s*```\s*$/.test(lines[i])) code.push(lines[i++]);
      i += 1; // the closing fence (or the end of the text)
      root.append(el('pre', { class: 'code' }, el('code', { 'data-lang': fence[1] || null }, code.join('\n'))));
      continue;
    }
    const heading = line.match(/^(#{1,3})\s+(.*)$/);
    if (heading) {
      flushParagraph();
      closeList();
      root.append(el(/** @type {'h3' | 'h4' | 'h5'} */ (`h${heading[1].length + 2}`), {}, inline(heading[2].replace(/\s+#+\s*$/, ''))));
      i += 1;
      continue;
    }
    const bullet = line.match(/^\s*[-*]\s+(.*)$/);
    const numbered = line.match(/^\s*(\d+)[.)]\s+(.*)$/);
    if (bullet || numbered) {
      flushParagraph();
      const ordered = Boolean(numbered);
      if (!list || list.ordered !== ordered) {
        const attrs = ordered && numbered[1] !== '1' ? { start: numbered[1] } : {};
        list = { node: el(ordered ? 'ol' : 'ul', attrs), ordered };
        root.append(list.node);
      }
      list.node.append(el('li', {}, inline(ordered ? numbered[2] : bullet[1])));
      i += 1;
      continue;
    }
    if (/^\s*$/.test(line)) {
      flushParagraph();
      closeList();
      i += 1;
      continue;
    }
    // An indented line right after a list item continues that item.
    if (list && /^\s+\S/.test(line) && !paragraph.length) {
      const last = list.node.lastElementChild;
      last.append(' ', ...inline(line.trim()));
      i += 1;
      continue;
    }
    closeList();
    paragraph.push(line);
    i += 1;
  }
  flushParagraph();
  return root;
}

/** Inline `code` and **bold** as nodes; line breaks inside a paragraph become <br>. */
function inline(text) {
  const nodes = [];
  const pattern = /`([^`\n]+)`|\*\*([^*\n]+?)\*\*/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) nodes.push(...textWithBreaks(text.slice(last, match.index)));
    nodes.push(match[1] !== undefined ? el('code', {}, match[1]) : el('strong', {}, match[2]));
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(...textWithBreaks(text.slice(last)));
  return nodes;
}

function textWithBreaks(text) {
  const out = [];
  text.split('\n').forEach((part, index) => {
    if (index) out.push(el('br'));
    if (part) out.push(document.createTextNode(part));
  });
  return out;
}
