// Quarry search page. Plain ES module, no dependencies, no build step.
//
// Safety rule for this file: every string that comes from the server (titles,
// sources, paragraphs, error messages, explain values) is untrusted. It only
// ever reaches the DOM through textContent / createTextNode / attributes —
// never through innerHTML.

import { apiFetch } from './read-key.js';

const MODES = ['hybrid', 'semantic', 'lexical'];
const KS = ['5', '10', '20', '50'];
const SORTS = ['relevance', 'date'];
const DEFAULT_MODE = 'hybrid';
const DEFAULT_K = '10';
const DEFAULT_SORT = 'relevance';
/** The API serves pages up to this depth (offset + k). */
const MAX_DEPTH = 1000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

const $ = (id) => document.getElementById(id);
const form = $('search-form');
const input = $('q');
const modeSelect = $('mode');
const kSelect = $('k');
const explainBox = $('explain');
const sortSelect = $('sort');
const fromInput = $('from');
const toInput = $('to');
const sourceOptions = $('source-options');
const tagOptions = $('tag-options');
const clearFilters = $('clear-filters');
const pager = $('pager');
const prevPage = $('prev-page');
const nextPage = $('next-page');
const pageInfo = $('page-info');
const statusEl = $('status');
const errorEl = $('error');
const noResultsEl = $('no-results');
const noResultsReason = $('no-results-reason');
const resultsEl = $('results');
const statsEl = $('stats');

let inFlight = null; // AbortController of the running search, so a newer one wins.
let current = null; // the state of the search on screen (for paging)

// ---------- small DOM helpers ----------

/** Create an element with optional class and text (text set via textContent). */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

const plural = (n, word) => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;
const fmtScore = (s) => (Number.isFinite(Number(s)) && s !== null ? Number(s).toFixed(3) : '—');
const articleHref = (id) => `/articles/${encodeURIComponent(id)}`;

// ---------- URL state ----------

/** Read the search state from a query string, falling back to defaults for junk values. */
function readState(search) {
  const p = new URLSearchParams(search);
  const mode = p.get('mode');
  const k = p.get('k');
  const sort = p.get('sort');
  const offset = Number(p.get('offset'));
  const date = (v) => (v && DATE.test(v) ? v : '');
  return {
    q: (p.get('q') || '').trim(),
    mode: MODES.includes(mode) ? mode : DEFAULT_MODE,
    k: KS.includes(k) ? k : DEFAULT_K,
    explain: p.get('explain') === 'true',
    sort: SORTS.includes(sort) ? sort : DEFAULT_SORT,
    from: date(p.get('from')),
    to: date(p.get('to')),
    sources: p.getAll('source').filter(Boolean),
    tags: p.getAll('tag').filter(Boolean),
    offset: Number.isInteger(offset) && offset > 0 ? offset : 0,
  };
}

/** The page's own URL (shareable): repeated source/tag parameters, as the API takes them. */
function stateToQuery(s) {
  const p = new URLSearchParams({ q: s.q, mode: s.mode, k: s.k });
  if (s.sort !== DEFAULT_SORT) p.set('sort', s.sort);
  if (s.from) p.set('from', s.from);
  if (s.to) p.set('to', s.to);
  for (const v of s.sources) p.append('source', v);
  for (const v of s.tags) p.append('tag', v);
  if (s.offset > 0) p.set('offset', String(s.offset));
  if (s.explain) p.set('explain', 'true');
  return p.toString();
}

function fillForm(s) {
  input.value = s.q;
  modeSelect.value = s.mode;
  kSelect.value = s.k;
  explainBox.checked = s.explain;
  sortSelect.value = s.sort;
  fromInput.value = s.from;
  toInput.value = s.to;
  // Checked values stay listed until the next response brings their counts.
  renderFacetOptions(sourceOptions, 'source', s.sources, null);
  renderFacetOptions(tagOptions, 'tag', s.tags, null);
}

const checkedValues = (box) => [...box.querySelectorAll('input[type="checkbox"]:checked')].map((c) => c.value);

function formState() {
  return {
    q: input.value.trim(),
    mode: modeSelect.value,
    k: kSelect.value,
    explain: explainBox.checked,
    sort: sortSelect.value,
    from: DATE.test(fromInput.value) ? fromInput.value : '',
    to: DATE.test(toInput.value) ? toInput.value : '',
    sources: checkedValues(sourceOptions),
    tags: checkedValues(tagOptions),
    offset: 0,
  };
}

// ---------- highlighting (ranges from the server: no tokenising here) ----------

/** Append `text` to `parent`, the ranges in `terms` (sorted, relative to `base`) wrapped in <mark>. */
function appendMarked(parent, text, base, terms) {
  let last = 0;
  for (const t of terms) {
    const start = Math.max(t.start - base, last);
    const end = Math.min(t.end - base, text.length);
    if (end <= start) continue;
    if (start > last) parent.append(document.createTextNode(text.slice(last, start)));
    parent.append(el('mark', null, text.slice(start, end)));
    last = end;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

/** The evidence text with the matched words bold and the best sentence shaded. Text nodes only. */
function appendHighlighted(parent, text, highlights) {
  const valid = (r) => r && Number.isInteger(r.start) && Number.isInteger(r.end) && r.start >= 0 && r.end <= text.length && r.start < r.end;
  const terms = Array.isArray(highlights?.terms) ? highlights.terms.filter(valid).sort((a, b) => a.start - b.start) : [];
  const sentence = valid(highlights?.sentence) ? highlights.sentence : null;
  if (!sentence) {
    appendMarked(parent, text, 0, terms);
    return;
  }
  appendMarked(parent, text.slice(0, sentence.start), 0, terms);
  const best = el('span', 'best-sentence');
  appendMarked(best, text.slice(sentence.start, sentence.end), sentence.start, terms);
  parent.append(best);
  appendMarked(parent, text.slice(sentence.end), sentence.end, terms);
}

// ---------- filters ----------

/**
 * Checkboxes for a facet: the values checked now (kept even when the results no longer hold them) and the
 * facet's values with their counts over the matching stories.
 */
function renderFacetOptions(box, name, checked, counts) {
  const rows = new Map();
  for (const v of checked) rows.set(v.toLowerCase(), { value: v, count: null, on: true });
  for (const c of counts ?? []) {
    const key = String(c.value).toLowerCase();
    const row = rows.get(key);
    if (row) row.count = c.count;
    else rows.set(key, { value: String(c.value), count: Number(c.count), on: false });
  }
  box.replaceChildren();
  if (rows.size === 0) {
    box.append(el('p', 'hint', counts ? 'None in these results.' : 'Search to see them.'));
    return;
  }
  for (const row of rows.values()) {
    const label = el('label', 'facet-option');
    const cb = el('input');
    cb.type = 'checkbox';
    cb.name = name;
    cb.value = row.value;
    cb.checked = row.on;
    label.append(cb, el('span', 'facet-value', row.value));
    if (row.count !== null) label.append(el('span', 'facet-count', row.count));
    label.dataset.value = row.value;
    box.append(label);
  }
}

// ---------- rendering ----------

function clearOutput() {
  errorEl.hidden = true;
  errorEl.replaceChildren();
  noResultsEl.hidden = true;
  resultsEl.replaceChildren();
  pager.hidden = true;
}

function showError(message, lead = 'Search failed.') {
  clearOutput();
  statusEl.textContent = '';
  errorEl.replaceChildren(el('strong', null, `${lead} `), document.createTextNode(message));
  errorEl.hidden = false;
}

/** Flatten an explain object into "key: value" lines (nested keys joined with dots). */
function explainLines(obj, prefix = '', out = []) {
  for (const [key, value] of Object.entries(obj)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === 'object' && !Array.isArray(value)) explainLines(value, name, out);
    else if (typeof value === 'number' && !Number.isInteger(value)) out.push([name, value.toFixed(4)]);
    else out.push([name, typeof value === 'string' ? value : JSON.stringify(value)]);
  }
  return out;
}

function renderExplain(explain) {
  const details = el('details', 'explain');
  details.append(el('summary', null, 'Explain score'));
  const dl = el('dl');
  for (const [k, v] of explainLines(explain)) {
    const row = el('div', 'explain-row');
    row.append(el('dt', null, k), el('dd', null, v));
    dl.append(row);
  }
  details.append(dl);
  return details;
}

function renderEvidence(ev, articleId) {
  const box = el('div', 'evidence');
  const paragraph = Number(ev.paragraph);
  box.dataset.paragraph = String(paragraph);

  const meta = el('p', 'evidence-meta');
  const link = el('a', 'evidence-link', `¶ ${paragraph + 1}`);
  link.href = `${articleHref(articleId)}#p${paragraph}`;
  link.setAttribute('aria-label', `Paragraph ${paragraph + 1} in the full article`);
  meta.append(link, el('span', 'evidence-score', `score ${fmtScore(ev.score)}`));

  const text = el('p', 'evidence-text');
  appendHighlighted(text, String(ev.text ?? ''), ev.highlights);

  box.append(meta, text);
  if (ev.explain && typeof ev.explain === 'object') box.append(renderExplain(ev.explain));
  return box;
}

/** "Also published by …": the other copies of a collapsed story, each linked to its article page. */
function renderDuplicates(result) {
  const dups = Array.isArray(result.duplicates) ? result.duplicates : [];
  if (dups.length === 0) return null;
  const p = el('p', 'also-published');
  p.append(document.createTextNode('Also published by '));
  dups.forEach((d, i) => {
    if (i > 0) p.append(document.createTextNode(', '));
    const a = el('a', null, d.source || d.title || d.id);
    a.href = articleHref(d.id);
    a.title = d.title || '';
    p.append(a);
    if (d.date) p.append(document.createTextNode(` (${d.date})`));
  });
  const more = Number(result.duplicateCount) - dups.length;
  if (more > 0) p.append(document.createTextNode(` and ${plural(more, 'other')}`));
  return p;
}

function renderResult(result) {
  const a = result.article || {};
  const card = el('article', 'result');
  card.dataset.articleId = String(a.id);

  const head = el('header', 'result-head');
  const h2 = el('h2', 'result-title');
  const titleLink = el('a', null, a.title || '(untitled)');
  titleLink.href = articleHref(a.id);
  h2.append(titleLink);

  const meta = el('p', 'meta result-meta');
  if (a.date) {
    const time = el('time', 'result-date', a.date);
    time.setAttribute('datetime', a.date);
    meta.append(time);
  }
  if (a.source) meta.append(el('span', 'result-source', a.source));
  if (Array.isArray(a.tags) && a.tags.length > 0) meta.append(el('span', 'result-tags', a.tags.join(', ')));
  meta.append(el('span', 'result-score', `score ${fmtScore(result.score)}`));
  head.append(h2, meta);
  const dups = renderDuplicates(result);
  if (dups) head.append(dups);
  card.append(head);

  const evidence = Array.isArray(result.evidence) ? result.evidence : [];
  if (evidence.length > 0) card.append(renderEvidence(evidence[0], a.id));
  if (evidence.length > 1) {
    const more = el('details', 'more-evidence');
    const n = evidence.length - 1;
    more.append(el('summary', null, `${n} more matching paragraph${n === 1 ? '' : 's'}`));
    for (const ev of evidence.slice(1)) more.append(renderEvidence(ev, a.id));
    card.append(more);
  }
  return card;
}

function renderNoResults(data, state) {
  const cut = Number(data.cutByMinScore) || 0;
  const chunks = data.index ? Number(data.index.chunks) : NaN;
  let reason;
  if (cut > 0) {
    reason = `${plural(cut, 'result')} matched but scored below the minimum score and ${cut === 1 ? 'was' : 'were'} cut. Try more specific words.`;
  } else if (chunks === 0) {
    reason = 'The index is empty: no articles have been indexed yet.';
  } else if (state.offset > 0 && Number(data.total) > 0) {
    reason = `This page is past the last of the ${plural(Number(data.total), 'result')}.`;
  } else if (state.from || state.to || state.sources.length > 0 || state.tags.length > 0) {
    reason = `No article within the filters matched “${state.q}”. Try clearing some filters.`;
  } else {
    reason = `No paragraph matched “${state.q}”. Try other words`;
    reason += state.mode === 'semantic' ? '.' : ', or the semantic mode, which matches by meaning rather than exact words.';
  }
  noResultsReason.textContent = reason;
  noResultsEl.hidden = false;
}

function renderResponse(data, state) {
  clearOutput();
  const results = Array.isArray(data.results) ? data.results : [];
  const total = Number.isFinite(Number(data.total)) ? Number(data.total) : results.length;
  const took = Math.round(Number(data.tookMs) * 10) / 10;
  let line = `${plural(total, 'result')} in ${Number.isFinite(took) ? took : '?'} ms`;
  if (results.length > 0 && results.length < total) line += ` · showing ${state.offset + 1}–${state.offset + results.length}`;
  // With explain, the API also says where the time went (embed, k-NN, BM25, fusion, grouping).
  if (data.timingsMs && typeof data.timingsMs === 'object') {
    const stages = Object.entries(data.timingsMs)
      .filter(([, ms]) => Number.isFinite(Number(ms)))
      .map(([stage, ms]) => `${stage} ${Number(ms).toFixed(1)}`);
    if (stages.length > 0) line += ` (${stages.join(' · ')} ms)`;
  }
  statusEl.textContent = line;

  const facets = data.facets && typeof data.facets === 'object' ? data.facets : {};
  renderFacetOptions(sourceOptions, 'source', state.sources, Array.isArray(facets.source) ? facets.source : []);
  renderFacetOptions(tagOptions, 'tag', state.tags, Array.isArray(facets.tag) ? facets.tag : []);

  if (results.length === 0) {
    renderNoResults(data, state);
    renderPager(state, total, 0);
    return;
  }
  resultsEl.append(...results.map((r) => renderResult(r)));
  renderPager(state, total, results.length);
}

/** Previous/next: pages of k stories through the matching set (the API keeps them stable). */
function renderPager(state, total, shown) {
  const k = Number(state.k);
  const hasPrev = state.offset > 0;
  const hasNext = state.offset + k < Math.min(total, MAX_DEPTH);
  pager.hidden = !hasPrev && !hasNext;
  prevPage.disabled = !hasPrev;
  nextPage.disabled = !hasNext;
  pageInfo.textContent = shown > 0 ? `${state.offset + 1}–${state.offset + shown} of ${total.toLocaleString('en-US')}` : '';
}

// ---------- networking ----------

/** API messages start in lower case ("wrong API key"); after "Search failed." they read as a sentence. */
const sentence = (m) => m.charAt(0).toUpperCase() + m.slice(1);

/** Turn a non-2xx response into a human sentence, preferring the API's error.message. */
async function errorMessage(res) {
  try {
    const body = await res.json();
    if (body?.error?.message) return sentence(String(body.error.message));
  } catch {
    /* not JSON: fall through */
  }
  return `The server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.`;
}

async function search(state) {
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;

  document.title = `${state.q} — Quarry`;
  resultsEl.setAttribute('aria-busy', 'true');
  resultsEl.classList.add('is-loading');
  statusEl.textContent = 'Searching…';

  try {
    current = state;
    const res = await apiFetch(`/search?${stateToQuery(state)}&facets=source,tag,year`, {
      headers: { Accept: 'application/json' },
      signal: controller.signal,
    });
    if (!res.ok) {
      showError(await errorMessage(res));
      return;
    }
    let data;
    try {
      data = await res.json();
    } catch {
      showError('The server sent a response that is not valid JSON.');
      return;
    }
    renderResponse(data, state);
  } catch (err) {
    if (err && err.name === 'AbortError') return; // superseded by a newer search
    showError('Could not reach the Quarry server. Check that it is running and try again.');
  } finally {
    if (inFlight === controller) {
      inFlight = null;
      resultsEl.setAttribute('aria-busy', 'false');
      resultsEl.classList.remove('is-loading');
    }
  }
}

function resetPage() {
  if (inFlight) inFlight.abort();
  clearOutput();
  statusEl.textContent = '';
  document.title = 'Quarry — semantic article search';
}

async function loadStats() {
  try {
    const res = await apiFetch('/stats', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(String(res.status));
    const s = await res.json();
    const parts = [plural(Number(s.articles) || 0, 'article'), `${plural(Number(s.chunks) || 0, 'paragraph')} indexed`];
    if (s.model) parts.push(`model ${s.model}`);
    statsEl.textContent = parts.join(' · ');
  } catch {
    statsEl.textContent = 'Index stats unavailable.';
  }
}

// ---------- events ----------

/** Runs `state` and records it in the URL (and the history, unless it is the search already shown). */
function go(state) {
  const url = `/?${stateToQuery(state)}`;
  // Re-submitting the same search should not add a duplicate history entry.
  if (url === location.pathname + location.search) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  search(state);
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const state = formState();
  if (!state.q) {
    showError('Type a few words to search for.', 'Nothing to search.');
    input.focus();
    return;
  }
  go(state);
});

// A filter or the order changed: search again from the first page (when there is a query).
function refine() {
  const state = formState();
  if (state.q) go(state);
}
for (const box of [sourceOptions, tagOptions]) box.addEventListener('change', refine);
for (const control of [fromInput, toInput, sortSelect]) control.addEventListener('change', refine);
clearFilters.addEventListener('click', () => {
  fromInput.value = '';
  toInput.value = '';
  for (const cb of form.querySelectorAll('.facet-options input:checked')) cb.checked = false;
  refine();
});

function turnPage(step) {
  if (!current) return;
  const k = Number(current.k);
  go({ ...current, offset: Math.max(0, current.offset + step * k) });
  resultsEl.focus();
}
prevPage.addEventListener('click', () => turnPage(-1));
nextPage.addEventListener('click', () => turnPage(1));

window.addEventListener('popstate', () => {
  const state = readState(location.search);
  fillForm(state);
  if (state.q) search(state);
  else resetPage();
});

// "/" jumps to the search box, unless the user is typing somewhere.
document.addEventListener('keydown', (event) => {
  if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey) return;
  const t = event.target;
  if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
  event.preventDefault();
  input.focus();
  input.select();
});

// ---------- start ----------

const initial = readState(location.search);
fillForm(initial);
if (initial.q) search(initial);
loadStats();
