// Quarry article page: fetches /articles/:id as JSON (same URL, Accept header)
// and renders it. All server text is untrusted and only set via textContent.

import { apiFetch } from './read-key.js';

const $ = (id) => document.getElementById(id);
const main = $('main');
const statusEl = $('status');
const errorEl = $('error');
const articleEl = $('article');
const titleEl = $('article-title');
const metaEl = $('article-meta');
const paragraphsEl = $('paragraphs');
const backLink = $('back-link');
const relatedEl = $('related');
const relatedList = $('related-list');
const relatedStatus = $('related-status');

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** Only http(s) URLs become links; anything else (javascript:, data:, junk) stays text. */
function safeHttpUrl(url) {
  if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) return null;
  try {
    return new URL(url).href;
  } catch {
    return null;
  }
}

// If we came from a search, go back to that exact search (query and options kept).
function setBackLink() {
  try {
    const ref = new URL(document.referrer);
    if (ref.origin === location.origin && ref.pathname === '/') backLink.href = ref.pathname + ref.search;
  } catch {
    /* no or foreign referrer: keep "/" */
  }
}

function showError(lead, message) {
  statusEl.textContent = '';
  articleEl.hidden = true;
  errorEl.replaceChildren(el('strong', null, `${lead} `), document.createTextNode(message));
  errorEl.hidden = false;
}

function render(a) {
  document.title = `${a.title || 'Untitled article'} — Quarry`;
  titleEl.textContent = a.title || '(untitled)';

  metaEl.replaceChildren();
  if (a.date) {
    const time = el('time', null, a.date);
    time.setAttribute('datetime', a.date);
    metaEl.append(time);
  }
  if (a.source) metaEl.append(el('span', 'article-source', a.source));
  if (Array.isArray(a.tags) && a.tags.length > 0) metaEl.append(el('span', 'article-tags', a.tags.join(', ')));
  const href = safeHttpUrl(a.url);
  if (href) {
    const link = el('a', 'article-url', 'Original article');
    link.href = href;
    link.rel = 'noopener noreferrer';
    metaEl.append(link);
  } else if (a.url) {
    metaEl.append(el('span', 'article-url', a.url));
  }

  const paragraphs = Array.isArray(a.paragraphs) ? a.paragraphs : [];
  paragraphsEl.replaceChildren(
    ...paragraphs.map((text, i) => {
      // id is the 0-based index the search API reports; the label is 1-based for humans.
      const p = el('p', 'paragraph');
      p.id = `p${i}`;
      const num = el('a', 'para-num', `¶ ${i + 1}`);
      num.href = `#p${i}`;
      num.setAttribute('aria-label', `Paragraph ${i + 1}`);
      p.append(num, el('span', 'para-text', text));
      return p;
    }),
  );
  if (paragraphs.length === 0) paragraphsEl.append(el('p', 'hint', 'This article has no text.'));

  statusEl.textContent = '';
  articleEl.hidden = false;
  markTarget(true);
}

// The paragraphs are inserted after load, so the browser's own #p5 scroll has
// already missed them: scroll and highlight by hand.
function markTarget(scroll) {
  for (const old of paragraphsEl.querySelectorAll('.is-target')) old.classList.remove('is-target');
  const id = decodeURIComponent(location.hash.slice(1));
  const target = id ? document.getElementById(id) : null;
  if (!target || !paragraphsEl.contains(target)) return;
  target.classList.add('is-target');
  if (scroll) target.scrollIntoView({ block: 'start' });
}

async function load() {
  setBackLink();
  try {
    const res = await apiFetch(location.pathname, { headers: { Accept: 'application/json' } });
    if (!res.ok) {
      let message = `The server answered ${res.status}.`;
      try {
        const body = await res.json();
        if (body?.error?.message) message = String(body.error.message);
      } catch {
        /* keep the status line */
      }
      showError(res.status === 404 ? 'Article not found.' : 'Could not load the article.', message);
      return;
    }
    let data;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!data || typeof data !== 'object') {
      showError('Could not load the article.', 'The server sent a response that is not valid article JSON.');
      return;
    }
    render(data);
  } catch {
    showError('Could not load the article.', 'Could not reach the Quarry server. Check that it is running and try again.');
  } finally {
    main.setAttribute('aria-busy', 'false');
  }
}

/** The closest other stories (GET /articles/:id/similar: from the stored vectors, copies of this one excluded). */
async function loadRelated() {
  relatedEl.hidden = false;
  relatedStatus.textContent = 'Finding related articles…';
  try {
    const res = await apiFetch(`${location.pathname}/similar?k=5`, { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(String(res.status));
    const data = await res.json();
    const results = Array.isArray(data?.results) ? data.results : [];
    relatedList.replaceChildren(
      ...results.map((r) => {
        const a = r.article || {};
        const li = el('li', 'related-item');
        li.dataset.articleId = String(a.id);
        const link = el('a', 'related-title', a.title || '(untitled)');
        link.href = `/articles/${encodeURIComponent(a.id)}`;
        const meta = el('p', 'meta');
        if (a.date) meta.append(el('span', null, a.date));
        if (a.source) meta.append(el('span', null, a.source));
        li.append(link, meta);
        return li;
      }),
    );
    relatedStatus.textContent = results.length === 0 ? 'No related articles.' : '';
  } catch {
    relatedStatus.textContent = 'Related articles are unavailable.';
  }
}

window.addEventListener('hashchange', () => markTarget(false));
load().then(() => {
  if (!articleEl.hidden) loadRelated();
});
