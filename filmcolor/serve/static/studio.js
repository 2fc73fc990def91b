/* filmcolor studio: the page's script (plain JavaScript, no build step, no outside assets).
 *
 * Uploads go one at a time (XMLHttpRequest, for the upload's own progress) to POST /api/jobs;
 * each job's row follows GET /api/jobs/{id}/events (a few streams at once, so that the browser's
 * six connections per server stay free for uploads and pictures) and GET /api/jobs every 2 s for
 * the rest. The File of every upload made from this page is kept in memory, so that a film can be
 * previewed on a few seconds, or a photo or film guided with colour hints, without choosing it
 * again.
 */
'use strict';

(() => {
  const FINAL = new Set(['done', 'failed', 'cancelled']);
  const MAX_STREAMS = 3;
  const POLL_MS = 2000;
  const IMAGE_EXT = ['.jpg', '.jpeg', '.png', '.tif', '.tiff', '.bmp', '.webp'];
  const VIDEO_EXT = ['.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.mpg', '.mpeg', '.m2v',
    '.ts', '.m2ts', '.mts', '.wmv', '.flv', '.ogv', '.mxf', '.dv', '.3gp', '.vob', '.nut'];
  const SETTINGS_KEY = 'filmcolor.studio.settings';

  const $ = (sel, root = document) => root.querySelector(sel);

  /** A new element: h('a', {class: 'x', href: '/'}, child, 'text', ...). */
  function h(tag, attrs = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) if (c != null && c !== false) el.append(c);
    return el;
  }

  const ui = {
    drop: $('#drop'),
    fileInput: $('#file-input'),
    folderInput: $('#folder-input'),
    settings: $('#settings'),
    referenceInput: $('#reference-input'),
    referenceAt: $('#reference-at'),
    guideFirst: $('#guide-first'),
    queue: $('#queue'),
    queueEmpty: $('#queue-empty'),
    queueSummary: $('#queue-summary'),
    serverInfo: $('#server-info'),
    message: $('#message'),
    uploadStatus: $('#upload-status'),
    guide: $('#guide'),
  };

  const state = {
    jobs: new Map(),        // id -> {view, el, built: false}
    files: new Map(),       // id -> File uploaded from this page
    streams: new Map(),     // id -> EventSource
    streamFailedAt: new Map(),
    pending: [],            // uploads not yet accepted: {file, hints, extra}
    sending: null,
    pausedUntil: 0,
    maxUpload: null,
    server: null,
    guide: null,            // {file, url, video, hints, media}
  };

  // -- small helpers ------------------------------------------------------------------------------
  function suffix(name) {
    const m = /\.[^./\\]+$/.exec(name || '');
    return m ? m[0].toLowerCase() : '';
  }
  const isImageFile = (f) => (f.type || '').startsWith('image/') || IMAGE_EXT.includes(suffix(f.name));
  const isVideoFile = (f) => (f.type || '').startsWith('video/') || VIDEO_EXT.includes(suffix(f.name));

  function fmtBytes(n) {
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
  }

  function fmtDuration(s) {
    if (s == null || !isFinite(s)) return '';
    s = Math.max(0, Math.round(s));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function parseJSON(text) {
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  // -- the message line --------------------------------------------------------------------------
  function showMessage(text, kind = 'error') {
    $('.message-text', ui.message).textContent = text;
    ui.message.className = `message ${kind}`;
    ui.message.hidden = false;
  }
  function hideMessage(kind) {
    if (!kind || ui.message.classList.contains(kind)) ui.message.hidden = true;
  }
  $('.message-close', ui.message).addEventListener('click', () => hideMessage());

  /** What the page says when the studio refuses an upload (the server's detail included). */
  function refusal(name, status, detail, retryAfter) {
    const d = detail || '';
    switch (status) {
      case 429:
        return `The queue is full, so "${name}" was not sent. Try again in ${retryAfter} s` +
          ' (the page will send it again by itself then).';
      case 413: return `"${name}" is too large for this studio: ${d}.`;
      case 415: return `"${name}" cannot be coloured: ${d}.`;
      case 400: return `"${name}" was refused: ${d}.`;
      case 401: return 'This studio needs its token: open the page as /?token=… with the token the server was started with.';
      case 0: return `"${name}" could not be sent: the studio did not answer (is the server running?).`;
      default: return `"${name}" was refused (${status}): ${d || 'no reason given'}.`;
    }
  }

  // -- settings ----------------------------------------------------------------------------------
  function settingsValues() {
    const out = {};
    for (const [k, v] of new FormData(ui.settings).entries()) {
      const t = String(v).trim();
      if (t !== '') out[k] = t;
    }
    return out;
  }
  function restoreSettings() {
    const saved = parseJSON(localStorage.getItem(SETTINGS_KEY) || 'null');
    if (!saved) return;
    for (const [k, v] of Object.entries(saved)) {
      const field = ui.settings.elements.namedItem(k);
      if (field && 'value' in field) field.value = v;
    }
  }
  ui.settings.addEventListener('input', () => {
    try { localStorage.setItem(SETTINGS_KEY, JSON.stringify(settingsValues())); } catch (e) { /* private mode */ }
  });
  ui.settings.addEventListener('submit', (e) => e.preventDefault());

  // -- uploads -----------------------------------------------------------------------------------
  /** Queue files to upload; `extra` adds form fields (a preview's start/end), `hints` a list. */
  function enqueue(files, { hints = null, extra = null } = {}) {
    for (const file of files) state.pending.push({ file, hints, extra });
    pump();
  }

  function send(task) {
    return new Promise((resolve) => {
      const form = new FormData();
      form.append('file', task.file, task.file.name);
      for (const [k, v] of Object.entries(settingsValues())) form.append(k, v);
      const ref = ui.referenceInput.files[0];
      if (ref) {
        form.append('reference', ref, ref.name);
        form.append('reference_at', ui.referenceAt.value.trim());
      }
      if (task.hints && task.hints.length) form.append('hints', JSON.stringify(task.hints));
      for (const [k, v] of Object.entries(task.extra || {})) form.append(k, v);
      const xhr = new XMLHttpRequest();
      task.xhr = xhr;
      xhr.open('POST', '/api/jobs');
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) { task.sent = e.loaded / e.total; renderUploadStatus(); }
      };
      xhr.onload = () => resolve({
        status: xhr.status,
        body: parseJSON(xhr.responseText),
        retryAfter: parseInt(xhr.getResponseHeader('Retry-After') || '', 10),
      });
      xhr.onerror = () => resolve({ status: 0, body: null });
      xhr.onabort = () => resolve({ status: -1, body: null });
      xhr.send(form);
    });
  }

  async function pump() {
    if (state.sending) return;
    while (state.pending.length) {
      const wait = state.pausedUntil - Date.now();
      if (wait > 0) {
        setTimeout(pump, wait + 50);
        renderUploadStatus();
        return;
      }
      const task = state.pending[0];
      const ref = ui.referenceInput.files[0];
      const bytes = task.file.size + (ref ? ref.size : 0);
      if (state.maxUpload && bytes > state.maxUpload) {
        state.pending.shift();
        showMessage(refusal(task.file.name, 413,
          `the upload is larger than this server accepts (${fmtBytes(state.maxUpload)})`));
        continue;
      }
      task.sent = 0;
      state.sending = task;
      renderUploadStatus();
      const r = await send(task);
      state.sending = null;
      if (r.status === -1) {  // stopped by the user
        renderUploadStatus();
        continue;
      }
      if (r.status === 429) {
        const secs = r.retryAfter > 0 ? r.retryAfter : 10;
        state.pausedUntil = Date.now() + secs * 1000;
        showMessage(refusal(task.file.name, 429, r.body && r.body.detail, secs), 'error wait');
        continue;  // the loop waits, then sends it again
      }
      state.pending.shift();
      if (r.status === 202 && r.body && r.body.id) {
        hideMessage('wait');
        accepted(task, r.body);
      } else {
        showMessage(refusal(task.file.name, r.status, r.body && r.body.detail));
      }
    }
    renderUploadStatus();
  }

  function accepted(task, body) {
    state.files.set(body.id, task.file);
    const kind = isImageFile(task.file) ? 'photo'
      : (task.extra && (task.extra.start || task.extra.end)) ? 'preview' : 'film';
    upsert({
      id: body.id, kind, name: task.file.name, state: body.state || 'queued', phase: 'queued',
      position: body.position, progress: 0, frames_done: 0, frames_total: null, eta_s: null,
      error: null, settings: {}, preview: task.extra ? { ...task.extra } : null,
    });
    ensureStreams();
  }

  function renderUploadStatus() {
    const box = ui.uploadStatus;
    const task = state.sending;
    const waiting = state.pending.length - (task ? 1 : 0);
    if (!task && !state.pending.length) { box.hidden = true; return; }
    box.hidden = false;
    const more = waiting > 0 ? ` · ${waiting} more waiting` : '';
    let text;
    if (task) text = `Sending “${task.file.name}” (${fmtBytes(task.file.size)})… ${Math.round((task.sent || 0) * 100)}%${more}`;
    else {
      const secs = Math.max(0, Math.ceil((state.pausedUntil - Date.now()) / 1000));
      const later = state.pending.length > 1 ? ` · ${state.pending.length - 1} more waiting` : '';
      text = `Queue full: sending “${state.pending[0].file.name}” again in ${secs} s${later}`;
    }
    $('.upload-text', box).textContent = text;
    $('.bar-fill', box).style.width = `${Math.round(((task && task.sent) || 0) * 100)}%`;
  }
  $('.upload-stop', ui.uploadStatus).addEventListener('click', () => {
    const task = state.sending;
    state.pending = [];
    if (task && task.xhr) task.xhr.abort();
    renderUploadStatus();
  });
  setInterval(() => { if (!state.sending && state.pending.length) renderUploadStatus(); }, 1000);

  /** Files chosen or dropped: guided first (one file, box ticked) or sent as they are. */
  function chosen(files) {
    files = files.filter((f) => f && f.size !== undefined);
    if (!files.length) return;
    if (ui.guideFirst.checked && files.length === 1) {
      openGuide(files[0]);
      return;
    }
    if (ui.guideFirst.checked) {
      showMessage(`Hints are placed on one file at a time; the ${files.length} files were sent without hints.`, 'info');
    }
    enqueue(files);
  }

  function folderFiles(files) {
    // A folder: its photos and films (not its hidden files or sidecars), in name order.
    return files
      .filter((f) => !f.name.startsWith('.') && (isImageFile(f) || isVideoFile(f)))
      .sort((a, b) => (a.webkitRelativePath || a.name).localeCompare(
        b.webkitRelativePath || b.name, undefined, { numeric: true }));
  }

  ui.fileInput.addEventListener('change', () => {
    chosen(Array.from(ui.fileInput.files));
    ui.fileInput.value = '';
  });
  ui.folderInput.addEventListener('change', () => {
    const all = Array.from(ui.folderInput.files);
    const files = folderFiles(all);
    if (all.length && !files.length) showMessage('That folder holds no photos or films.');
    chosen(files);
    ui.folderInput.value = '';
  });

  // Drag and drop, folders included (read through the entries API).
  function readEntry(entry, out) {
    return new Promise((resolve) => {
      if (entry.isFile) {
        entry.file((f) => { out.push(f); resolve(); }, () => resolve());
      } else if (entry.isDirectory) {
        const reader = entry.createReader();
        const batch = () => reader.readEntries(async (entries) => {
          if (!entries.length) { resolve(); return; }
          for (const e of entries) await readEntry(e, out);
          batch();
        }, () => resolve());
        batch();
      } else resolve();
    });
  }

  ui.drop.addEventListener('dragenter', (e) => { e.preventDefault(); ui.drop.classList.add('over'); });
  ui.drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    ui.drop.classList.add('over');
  });
  ui.drop.addEventListener('dragleave', (e) => {
    if (!ui.drop.contains(e.relatedTarget)) ui.drop.classList.remove('over');
  });
  ui.drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    ui.drop.classList.remove('over');
    const items = Array.from(e.dataTransfer.items || []);
    const entries = items.map((it) => (it.webkitGetAsEntry ? it.webkitGetAsEntry() : null));
    if (!entries.some((en) => en && en.isDirectory)) {
      chosen(Array.from(e.dataTransfer.files));
      return;
    }
    const out = [];
    const direct = [];
    for (const en of entries) {
      if (!en) continue;
      if (en.isDirectory) await readEntry(en, out);
      else await readEntry(en, direct);
    }
    const files = direct.concat(folderFiles(out));
    if (!files.length) showMessage('Nothing to colour there: no photos or films were found.');
    chosen(files);
  });
  ui.drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); ui.fileInput.click(); }
  });
  // A file dropped beside the drop area must not make the browser leave the page.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());

  // -- the queue ---------------------------------------------------------------------------------
  function upsert(view) {
    let job = state.jobs.get(view.id);
    if (!job) {
      job = { view, el: buildRow(view), built: false, since: Date.now() };
      state.jobs.set(view.id, job);
      ui.queue.append(job.el);
    } else {
      // A fuller view (from the server) replaces the page's own guess; never go back from final.
      if (FINAL.has(job.view.state) && !FINAL.has(view.state)) return;
      job.view = { ...job.view, ...view };
    }
    renderRow(job);
    renderSummary();
  }

  function removeRow(id) {
    const job = state.jobs.get(id);
    closeStream(id);
    if (job) job.el.remove();
    state.jobs.delete(id);
    state.files.delete(id);
    renderSummary();
  }

  function buildRow(view) {
    const el = h('li', { class: 'job', 'data-job-id': view.id },
      h('div', { class: 'job-head' },
        h('span', { class: 'job-kind' }),
        h('span', { class: 'job-name' }),
        h('span', { class: 'job-state' })),
      h('div', { class: 'job-line' },
        h('div', { class: 'bar', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100 },
          h('div', { class: 'bar-fill' })),
        h('span', { class: 'job-detail' })),
      h('p', { class: 'job-error', hidden: true }),
      h('div', { class: 'job-actions' },
        h('button', { type: 'button', class: 'button small guide-open', text: 'Guide…', hidden: true,
          title: 'Place colour hints and upload it again as a new job',
          onclick: () => guideJob(view.id) }),
        h('button', { type: 'button', class: 'button small remove', onclick: () => removeJob(view.id) })),
      h('div', { class: 'job-body' }),
      h('div', { class: 'job-tools' }));
    return el;
  }

  function detailText(v) {
    switch (v.state) {
      case 'queued':
        return v.position ? `waiting · #${v.position} in the queue` : 'waiting';
      case 'running': {
        const parts = [v.phase && v.phase !== 'running' ? v.phase : 'running'];
        if (v.frames_total && v.kind !== 'photo') parts.push(`${v.frames_done || 0} / ${v.frames_total} frames`);
        parts.push(`${Math.round((v.progress || 0) * 100)}%`);
        if (v.eta_s != null) parts.push(`about ${fmtDuration(v.eta_s)} left`);
        return parts.join(' · ');
      }
      case 'done': {
        const took = v.finished && v.started ? ` in ${fmtDuration(v.finished - v.started)}` : '';
        const frames = v.kind !== 'photo' && v.frames_total ? ` · ${v.frames_total} frames` : '';
        return `coloured${took}${frames}`;
      }
      case 'failed': return 'failed';
      case 'cancelled': return 'cancelled';
      default: return v.state;
    }
  }

  function renderRow(job) {
    const v = job.view;
    const el = job.el;
    el.className = `job state-${v.state} kind-${v.kind}`;
    $('.job-kind', el).textContent = v.kind;
    $('.job-name', el).textContent = v.name;
    $('.job-name', el).title = v.name;
    $('.job-state', el).textContent = v.state;
    const pct = Math.round((v.state === 'done' ? 1 : v.progress || 0) * 100);
    const bar = $('.bar', el);
    bar.setAttribute('aria-valuenow', pct);
    $('.bar-fill', el).style.width = `${pct}%`;
    $('.job-detail', el).textContent = detailText(v);
    const err = $('.job-error', el);
    err.hidden = !v.error;
    err.textContent = v.error || '';
    const remove = $('.remove', el);
    remove.textContent = FINAL.has(v.state) ? 'Remove' : 'Cancel';
    remove.title = FINAL.has(v.state) ? 'Forget this job and delete its files on the server'
      : 'Stop this job and delete its files on the server';
    $('.guide-open', el).hidden = !(state.files.has(v.id) || (v.kind === 'photo' && v.state === 'done'));
    if (v.state === 'done' && !job.built) {
      job.built = true;
      $('.job-body', el).replaceChildren(...buildResult(v));
    }
    const tools = $('.job-tools', el);
    if ((v.kind === 'film' || v.kind === 'preview') && state.files.has(v.id) && !tools.firstChild) {
      tools.append(buildPreviewForm(v.id));
    }
  }

  function renderSummary() {
    const views = Array.from(state.jobs.values(), (j) => j.view);
    ui.queueEmpty.hidden = views.length > 0;
    const n = (s) => views.filter((v) => v.state === s).length;
    const parts = [];
    if (n('running')) parts.push(`${n('running')} running`);
    if (n('queued')) parts.push(`${n('queued')} waiting`);
    if (n('done')) parts.push(`${n('done')} done`);
    ui.queueSummary.textContent = parts.join(' · ');
  }

  async function removeJob(id) {
    const job = state.jobs.get(id);
    const final = job && FINAL.has(job.view.state);
    const button = job && $('.remove', job.el);
    if (button) button.disabled = true;
    try {
      const r = await fetch(`/api/jobs/${id}`, { method: 'DELETE' });
      if (r.status === 204 || r.status === 404) {
        if (final || r.status === 404) removeRow(id);
        else {
          closeStream(id);
          const view = await fetch(`/api/jobs/${id}`).then((x) => (x.ok ? x.json() : null)).catch(() => null);
          if (view) upsert(view); else removeRow(id);
        }
      } else {
        const body = await r.json().catch(() => null);
        showMessage(`Could not remove "${job ? job.view.name : id}": ${(body && body.detail) || r.status}.`);
      }
    } catch (e) {
      showMessage('The studio did not answer (is the server running?).');
    } finally {
      if (button) button.disabled = false;
    }
  }

  // -- results -----------------------------------------------------------------------------------
  function downloadLink(v) {
    return h('a', { class: 'button primary download', href: `/api/jobs/${v.id}/result?download=1`,
      download: true, text: 'Download' });
  }

  function settingsText(v) {
    const s = v.settings || {};
    const parts = [];
    for (const k of ['model', 'vividness', 'fade_unsure', 'render_size', 'smoothing', 'temporal', 'upsample']) {
      if (s[k] != null) parts.push(`${k.replace('_', ' ')} ${s[k]}`);
    }
    if (s.hints) parts.push('hints');
    if (v.preview) {
      const p = v.preview;
      parts.push(`${p.start || 'start'} – ${p.end || 'end'}${p.side_by_side ? ', side by side' : ''}`);
    }
    return parts.length ? parts.join(' · ') : 'default settings';
  }

  function buildResult(v) {
    const meta = h('div', { class: 'result-meta' },
      h('p', { class: 'note', text: settingsText(v) }),
      downloadLink(v));
    if (v.kind === 'photo') return [h('div', { class: 'result photo' }, buildCompare(v), meta)];
    const still = h('figure', { class: 'still' },
      h('img', { src: `/api/jobs/${v.id}/preview`, alt: `${v.name}: a still`, loading: 'lazy',
        onerror: (e) => e.target.closest('figure').remove() }),
      h('figcaption', { text: v.preview && v.preview.side_by_side ? 'Middle frame'
        : 'Middle frame: original | colour' }));
    const video = h('video', { class: 'result-video', controls: true, preload: 'metadata',
      src: `/api/jobs/${v.id}/result` });
    const wrap = h('div', { class: 'result film' }, video, h('div', { class: 'result-side' }, still, meta));
    video.addEventListener('error', () => {
      video.replaceWith(h('p', { class: 'note unplayable',
        text: 'This browser cannot play the film’s format; download it to watch it.' }));
    });
    return [wrap];
  }

  /** Before/after: the original under, the colour over it, clipped at the slider's value. */
  function buildCompare(v) {
    const before = h('img', { class: 'compare-before', src: `/api/jobs/${v.id}/source`,
      alt: `${v.name}, original`, draggable: 'false' });
    const after = h('div', { class: 'compare-after' },
      h('img', { src: `/api/jobs/${v.id}/result`, alt: `${v.name}, in colour`, draggable: 'false' }));
    const handle = h('div', { class: 'compare-handle', 'aria-hidden': 'true' });
    const range = h('input', { type: 'range', class: 'compare-range', min: 0, max: 100, step: 0.5,
      value: 50, 'aria-label': 'Divide original (left) and colour (right)' });
    const box = h('div', { class: 'compare' }, before, after, handle,
      h('span', { class: 'compare-label left', text: 'original' }),
      h('span', { class: 'compare-label right', text: 'colour' }), range);
    const set = () => {
      const p = Number(range.value);
      after.style.clipPath = `inset(0 0 0 ${p}%)`;
      handle.style.left = `${p}%`;
    };
    range.addEventListener('input', set);
    set();
    before.addEventListener('load', () => {
      const w = before.naturalWidth;
      const hgt = before.naturalHeight;
      if (w && hgt) box.style.maxWidth = `${Math.min(720, Math.round(440 * w / hgt))}px`;
    });
    // A format the browser cannot show (TIFF): the side-by-side still the server made instead.
    let fellBack = false;
    const fallback = () => {
      if (fellBack) return;
      fellBack = true;
      box.replaceWith(h('figure', { class: 'still' },
        h('img', { src: `/api/jobs/${v.id}/preview`, alt: `${v.name}: original | colour` }),
        h('figcaption', { text: 'original | colour (this browser cannot show the file itself)' })));
    };
    before.addEventListener('error', fallback);
    $('img', after).addEventListener('error', fallback);
    return box;
  }

  function buildPreviewForm(id) {
    const form = h('form', { class: 'preview-form' },
      h('span', { class: 'preview-title', text: 'Try the settings on a few seconds:' }),
      h('label', {}, 'from', h('input', { name: 'start', type: 'text', placeholder: '00:00:10',
        size: 10, spellcheck: 'false' })),
      h('label', {}, 'to', h('input', { name: 'end', type: 'text', placeholder: '00:00:14',
        size: 10, spellcheck: 'false' })),
      h('label', { class: 'check' }, h('input', { name: 'side_by_side', type: 'checkbox', checked: true }),
        'side by side'),
      h('button', { type: 'submit', class: 'button small', text: 'Preview' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const file = state.files.get(id);
      if (!file) { showMessage('Choose the film again to preview it: the page no longer holds it.'); return; }
      const start = form.elements.start.value.trim();
      const end = form.elements.end.value.trim();
      if (!start && !end) {
        showMessage('Give a start or an end (00:01:10, 70.5 or 1680f) for the preview.');
        return;
      }
      const extra = { side_by_side: form.elements.side_by_side.checked ? 'true' : 'false' };
      if (start) extra.start = start;
      if (end) extra.end = end;
      enqueue([file], { extra });
    });
    return form;
  }

  // -- live state: event streams, and polling for the rest ---------------------------------------
  function closeStream(id) {
    const es = state.streams.get(id);
    if (es) { es.close(); state.streams.delete(id); }
  }

  function openStream(id) {
    const es = new EventSource(`/api/jobs/${id}/events`);
    state.streams.set(id, es);
    es.onmessage = (ev) => {
      const view = parseJSON(ev.data);
      if (!view || !view.id) return;
      upsert(view);
      if (FINAL.has(view.state)) { closeStream(id); ensureStreams(); }
    };
    es.addEventListener('gone', () => removeRow(id));
    es.onerror = () => {  // the stream ended or broke: polling takes over for a while
      closeStream(id);
      state.streamFailedAt.set(id, Date.now());
    };
  }

  function ensureStreams() {
    const active = Array.from(state.jobs.values(), (j) => j.view)
      .filter((v) => !FINAL.has(v.state))
      .sort((a, b) => (a.state === 'running' ? 0 : 1) - (b.state === 'running' ? 0 : 1)
        || (a.position || 0) - (b.position || 0));
    for (const v of active.slice(0, MAX_STREAMS)) {
      if (state.streams.size >= MAX_STREAMS) break;
      if (state.streams.has(v.id)) continue;
      if (Date.now() - (state.streamFailedAt.get(v.id) || 0) < 5000) continue;
      openStream(v.id);
    }
  }

  let lastSync = 0;
  async function refresh() {
    const started = Date.now();
    lastSync = started;
    let r;
    try {
      r = await fetch('/api/jobs', { cache: 'no-store' });
    } catch (e) {
      return;
    }
    if (r.status === 401) { showMessage(refusal('', 401)); return; }
    if (!r.ok) return;
    const data = await r.json();
    state.maxUpload = data.max_upload;
    state.server = data;
    ui.serverInfo.textContent = `${data.workers} worker${data.workers === 1 ? '' : 's'} · ` +
      `queue of ${data.queue} · uploads up to ${fmtBytes(data.max_upload)}`;
    const seen = new Set();
    for (const view of data.jobs) {
      seen.add(view.id);
      upsert(view);
    }
    for (const [id, job] of Array.from(state.jobs.entries())) {
      if (!seen.has(id) && job.since < started) removeRow(id);  // removed elsewhere
    }
    ensureStreams();
  }

  setInterval(() => {
    const unstreamed = Array.from(state.jobs.values()).some(
      (j) => !FINAL.has(j.view.state) && !state.streams.has(j.view.id));
    if (unstreamed || Date.now() - lastSync > 15000) refresh();
  }, POLL_MS);

  // -- colour hints ------------------------------------------------------------------------------
  const g = {
    stage: $('#guide-stage'),
    name: $('#guide-name'),
    color: $('#hint-color'),
    timed: $('#hint-timed'),
    timedLabel: $('#hint-timed-label'),
    seekbar: $('#guide-seekbar'),
    seek: $('#guide-seek'),
    play: $('#guide-play'),
    time: $('#guide-time'),
    list: $('#hint-list'),
    empty: $('#hint-empty'),
  };

  /** Where the picture lies inside its element (a video may be letterboxed). */
  function contentBox(media) {
    const r = media.getBoundingClientRect();
    const nw = media.videoWidth || media.naturalWidth || r.width;
    const nh = media.videoHeight || media.naturalHeight || r.height;
    const scale = Math.min(r.width / nw, r.height / nh);
    const w = nw * scale;
    const hh = nh * scale;
    return { left: r.left + (r.width - w) / 2, top: r.top + (r.height - hh) / 2, width: w, height: hh,
      offX: (r.width - w) / 2, offY: (r.height - hh) / 2 };
  }

  function openGuide(file, { from = null } = {}) {
    closeGuideMedia();
    const video = !isImageFile(file) && (isVideoFile(file) || (file.type || '').startsWith('video/'));
    const url = URL.createObjectURL(file);
    const media = video
      ? h('video', { src: url, preload: 'auto', muted: true, playsinline: true, class: 'guide-media' })
      : h('img', { src: url, alt: file.name, class: 'guide-media', draggable: 'false' });
    const dots = h('div', { class: 'guide-dots' });
    const overlay = h('div', { class: 'guide-overlay', title: 'Click to place a hint' });
    g.stage.replaceChildren(media, dots, overlay);
    state.guide = { file, url, video, media, dots, hints: [], from };
    g.name.textContent = `· ${file.name}`;
    g.seekbar.hidden = !video;
    g.timedLabel.hidden = !video;
    if (video) {
      media.muted = true;
      media.addEventListener('loadedmetadata', () => {
        g.seek.max = String(media.duration || 0);
        renderHints();
      });
      media.addEventListener('timeupdate', () => {
        g.seek.value = String(media.currentTime);
        g.time.textContent = `${media.currentTime.toFixed(3)} s`;
        renderHints();
      });
      media.addEventListener('play', () => { g.play.textContent = 'Pause'; });
      media.addEventListener('pause', () => { g.play.textContent = 'Play'; });
      media.addEventListener('error', () => {
        g.stage.replaceChildren(h('p', { class: 'note unplayable',
          text: 'This browser cannot show this film’s format, so hints cannot be placed on it here.' }));
      });
    } else {
      media.addEventListener('load', renderHints);
      media.addEventListener('error', () => {
        g.stage.replaceChildren(h('p', { class: 'note unplayable',
          text: 'This browser cannot show this photo’s format (TIFF?), so hints cannot be placed on it here.' }));
      });
    }
    overlay.addEventListener('click', (e) => {
      const box = contentBox(media);
      const x = (e.clientX - box.left) / box.width;
      const y = (e.clientY - box.top) / box.height;
      if (x < 0 || x > 1 || y < 0 || y > 1) return;
      const hint = { x: Math.round(x * 10000) / 10000, y: Math.round(y * 10000) / 10000, color: g.color.value };
      if (video && g.timed.checked) hint.frame = media.currentTime.toFixed(3);
      state.guide.hints.push(hint);
      renderHints();
    });
    renderHints();
    if (!ui.guide.open) ui.guide.showModal();
  }

  function renderHints() {
    const s = state.guide;
    if (!s) return;
    g.list.replaceChildren();
    s.dots.replaceChildren();
    g.empty.hidden = s.hints.length > 0;
    const box = s.media.isConnected ? contentBox(s.media) : null;
    s.hints.forEach((hint, i) => {
      const at = hint.frame != null ? ` · at ${hint.frame} s` : (s.video ? ' · every shot' : '');
      g.list.append(h('li', { class: 'hint' },
        h('span', { class: 'swatch', style: `background:${hint.color}` }),
        h('span', { class: 'hint-text', text: `${i + 1}. x ${hint.x.toFixed(2)}, y ${hint.y.toFixed(2)}${at}` }),
        h('button', { type: 'button', class: 'button small hint-remove', text: 'Remove',
          'aria-label': `Remove hint ${i + 1}`,
          onclick: () => { s.hints.splice(i, 1); renderHints(); } })));
      if (box && box.width) {
        const near = hint.frame == null || Math.abs(Number(hint.frame) - s.media.currentTime) < 0.05;
        s.dots.append(h('span', {
          class: `dot${near ? '' : ' elsewhere'}`, text: String(i + 1),
          style: `left:${box.offX + hint.x * box.width}px;top:${box.offY + hint.y * box.height}px;` +
            `background:${hint.color}`,
        }));
      }
    });
  }

  function closeGuideMedia() {
    if (state.guide) URL.revokeObjectURL(state.guide.url);
    state.guide = null;
    g.stage.replaceChildren();
  }
  function closeGuide() {
    if (ui.guide.open) ui.guide.close();
    closeGuideMedia();
  }

  async function guideJob(id) {
    let file = state.files.get(id);
    const job = state.jobs.get(id);
    if (!file && job && job.view.kind === 'photo') {  // a photo from an earlier visit: its upload
      try {
        const r = await fetch(`/api/jobs/${id}/source`);
        if (!r.ok) throw new Error(String(r.status));
        const blob = await r.blob();
        file = new File([blob], job.view.name, { type: blob.type });
      } catch (e) {
        showMessage(`Could not fetch "${job.view.name}" to guide it.`);
        return;
      }
    }
    if (file) openGuide(file, { from: id });
  }

  g.seek.addEventListener('input', () => {
    const s = state.guide;
    if (s && s.video) s.media.currentTime = Number(g.seek.value);
  });
  g.play.addEventListener('click', () => {
    const s = state.guide;
    if (!s || !s.video) return;
    if (s.media.paused) s.media.play().catch(() => {}); else s.media.pause();
  });
  $('#guide-clear').addEventListener('click', () => {
    if (state.guide) { state.guide.hints = []; renderHints(); }
  });
  $('#guide-cancel').addEventListener('click', closeGuide);
  $('.guide-close', ui.guide).addEventListener('click', closeGuide);
  ui.guide.addEventListener('close', closeGuideMedia);
  $('#guide-upload').addEventListener('click', () => {
    const s = state.guide;
    if (!s) return;
    const hints = s.hints.slice();
    const file = s.file;
    closeGuide();
    enqueue([file], { hints });
  });
  window.addEventListener('resize', renderHints);

  // -- start -------------------------------------------------------------------------------------
  // The token (if any) is now in a cookie; keep it out of the address bar and of bookmarks.
  if (new URLSearchParams(location.search).has('token')) {
    history.replaceState(null, '', location.pathname);
  }
  restoreSettings();
  renderSummary();
  refresh();
})();
