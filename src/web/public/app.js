// Quarry search page. Plain ES module, no dependencies, no build step.
//
// Safety rule for this file: every string that comes from the server (titles,
// sources, paragraphs, error messages, explain values) is untrusted. It only
// ever reaches the DOM through textContent / createTextNode / attributes —
// never through innerHTML.

import { apiFetch } from './read-key.js';

const MODES = ['hybrid', 'semantic', 'lexical'];
const KS = ['5', '10', '20', '50'];
const DEFAULT_MODE = 'hybrid';
const DEFAULT_K = '10';

// Words too common to be worth highlighting.
const STOP_WORDS = new Set(
  `a an and are as at be but by did do does for from had has have he her his how
if in into is it its me my no not of on or our she so than that the their them then there these they
this those to too us was we were what when where which who whom why will with you your`.split(/\s+/),
);

const $ = (id) => document.getElementById(id);
const form = $('search-form');
const input = $('q');
const modeSelect = $('mode');
const kSelect = $('k');
const explainBox = $('explain');
const statusEl = $('status');
const errorEl = $('error');
const noResultsEl = $('no-results');
const noResultsReason = $('no-results-reason');
const resultsEl = $('results');
const statsEl = $('stats');

let inFlight = null; // AbortController of the running search, so a newer one wins.

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

/** Read {q, mode, k, explain} from a query string, falling back to defaults for junk values. */
function readState(search) {
  const p = new URLSearchParams(search);
  const mode = p.get('mode');
  const k = p.get('k');
  return {
    q: (p.get('q') || '').trim(),
    mode: MODES.includes(mode) ? mode : DEFAULT_MODE,
    k: KS.includes(k) ? k : DEFAULT_K,
    explain: p.get('explain') === 'true',
  };
}

function stateToQuery(s) {
  const p = new URLSearchParams({ q: s.q, mode: s.mode, k: s.k });
  if (s.explain) p.set('explain', 'true');
  return p.toString();
}

function fillForm(s) {
  input.value = s.q;
  modeSelect.value = s.mode;
  kSelect.value = s.k;
  explainBox.checked = s.explain;
}

function formState() {
  return {
    q: input.value.trim(),
    mode: modeSelect.value,
    k: kSelect.value,
    explain: explainBox.checked,
  };
}

// ---------- highlighting ----------

/** Query → lowercase terms worth highlighting (letters/digits, ≥ 2 chars, no stop words). */
function queryTerms(q) {
  const words = q.toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
  const terms = [...new Set(words.filter((w) => w.length >= 2 && !STOP_WORDS.has(w)))];
  // Longest first so "industrial" wins over "in" style overlaps in the alternation.
  return terms.sort((a, b) => b.length - a.length);
}

/**
 * Regex matching whole words that *start* with a query term, so "cooperat"
 * in the query also marks "cooperation". Null when nothing to highlight.
 */
function termsRegex(terms) {
  if (terms.length === 0) return null;
  const alt = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return new RegExp(`(?<![\\p{L}\\p{N}])(?:${alt})[\\p{L}\\p{N}]*`, 'giu');
}

/** Append `text` to `parent`, wrapping matches of `re` in <mark>. Text nodes only. */
function appendHighlighted(parent, text, re) {
  if (!re) {
    parent.append(document.createTextNode(text));
    return;
  }
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    parent.append(el('mark', null, m[0]));
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

// ---------- rendering ----------

function clearOutput() {
  errorEl.hidden = true;
  errorEl.replaceChildren();
  noResultsEl.hidden = true;
  resultsEl.replaceChildren();
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

function renderEvidence(ev, articleId, re) {
  const box = el('div', 'evidence');
  const paragraph = Number(ev.paragraph);
  box.dataset.paragraph = String(paragraph);

  const meta = el('p', 'evidence-meta');
  const link = el('a', 'evidence-link', `¶ ${paragraph + 1}`);
  link.href = `${articleHref(articleId)}#p${paragraph}`;
  link.setAttribute('aria-label', `Paragraph ${paragraph + 1} in the full article`);
  meta.append(link, el('span', 'evidence-score', `score ${fmtScore(ev.score)}`));

  const text = el('p', 'evidence-text');
  appendHighlighted(text, String(ev.text ?? ''), re);

  box.append(meta, text);
  if (ev.explain && typeof ev.explain === 'object') box.append(renderExplain(ev.explain));
  return box;
}

function renderResult(result, re) {
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
  meta.append(el('span', 'result-score', `score ${fmtScore(result.score)}`));
  head.append(h2, meta);
  card.append(head);

  const evidence = Array.isArray(result.evidence) ? result.evidence : [];
  if (evidence.length > 0) card.append(renderEvidence(evidence[0], a.id, re));
  if (evidence.length > 1) {
    const more = el('details', 'more-evidence');
    const n = evidence.length - 1;
    more.append(el('summary', null, `${n} more matching paragraph${n === 1 ? '' : 's'}`));
    for (const ev of evidence.slice(1)) more.append(renderEvidence(ev, a.id, re));
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
  let line = `${plural(total, 'article')} in ${Number.isFinite(took) ? took : '?'} ms`;
  if (results.length > 0 && results.length < total) line += ` · showing the top ${results.length}`;
  // With explain, the API also says where the time went (embed, k-NN, BM25, fusion, grouping).
  if (data.timingsMs && typeof data.timingsMs === 'object') {
    const stages = Object.entries(data.timingsMs)
      .filter(([, ms]) => Number.isFinite(Number(ms)))
      .map(([stage, ms]) => `${stage} ${Number(ms).toFixed(1)}`);
    if (stages.length > 0) line += ` (${stages.join(' · ')} ms)`;
  }
  statusEl.textContent = line;

  if (results.length === 0) {
    renderNoResults(data, state);
    return;
  }
  const re = termsRegex(queryTerms(state.q));
  resultsEl.append(...results.map((r) => renderResult(r, re)));
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
    const res = await apiFetch(`/search?${stateToQuery(state)}`, {
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

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const state = formState();
  if (!state.q) {
    showError('Type a few words to search for.', 'Nothing to search.');
    input.focus();
    return;
  }
  const url = `/?${stateToQuery(state)}`;
  // Re-submitting the same search should not add a duplicate history entry.
  if (url === location.pathname + location.search) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  search(state);
});

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
