// fetch() for the pages of a Quarry that requires a read key (QUARRY_READ_KEY). The first 401 asks the
// person for the key in a dialog, keeps it for this tab (sessionStorage: gone when the tab closes, never
// sent anywhere but this server), and retries; a refused key asks again. Cancelling returns the 401, which
// the page reports as an error. Calls made while the dialog is open wait for the same answer.

const STORAGE_KEY = 'quarry.readKey';

let asking = null;

function storedKey() {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: ask every time
  }
}

function storeKey(key) {
  try {
    if (key) sessionStorage.setItem(STORAGE_KEY, key);
    else sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    /* storage disabled */
  }
}

function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
}

/** Resolves to the key typed, or null when the person cancels. */
function askForKey(refused) {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const input = el('input', { id: 'read-key-input', type: 'password', name: 'key', autocomplete: 'current-password', required: true, spellcheck: false });
    const message = el('p', { id: 'read-key-message', className: 'hint' }, [
      refused ? 'That key was refused. Check it and try again.' : 'This Quarry server requires a read key. Ask its operator for one.',
    ]);
    const cancel = el('button', { type: 'button', id: 'read-key-cancel', className: 'secondary' }, ['Cancel']);
    const submit = el('button', { type: 'submit', id: 'read-key-submit' }, ['Use key']);
    const form = el('form', { method: 'dialog' }, [
      el('h2', {}, ['Read key required']),
      message,
      el('label', { htmlFor: 'read-key-input' }, ['Read key']),
      input,
      el('div', { className: 'dialog-actions' }, [cancel, submit]),
    ]);
    const dialog = el('dialog', { id: 'read-key-dialog', className: 'read-key-dialog' }, [form]);
    let answer = null;
    const done = () => {
      dialog.remove();
      asking = null;
      resolve(answer);
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const key = input.value.trim();
      if (!key) return input.focus();
      answer = key;
      dialog.close();
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', done);
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
  return asking;
}

/** Is this 401 the server asking for a read key (rather than something else)? */
async function wantsKey(res) {
  if (res.status !== 401) return false;
  try {
    const body = await res.clone().json();
    return body?.error?.field === 'authorization';
  } catch {
    return false;
  }
}

/** fetch() with the tab's read key, asking for one when the server wants it. */
export async function apiFetch(url, init = {}) {
  for (;;) {
    const key = storedKey();
    const headers = new Headers(init.headers);
    if (key) headers.set('Authorization', `Bearer ${key}`);
    const res = await fetch(url, { ...init, headers });
    if (!(await wantsKey(res))) return res;
    if (key) storeKey(null);
    // Another call may have stored a key while this one was in flight: retry with it before asking.
    if (storedKey() && storedKey() !== key) continue;
    const typed = await askForKey(Boolean(key));
    if (!typed) return res;
    storeKey(typed);
  }
}
