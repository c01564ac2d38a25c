// Glow face editor page: plain JavaScript, no framework, no network access beyond this server.
// State: the current face (an id the server caches), the slider strengths, the mix slots.
// Requests are coalesced: while one is in flight, only the latest wanted state is sent next.
'use strict';

const $ = (sel) => document.querySelector(sel);

const state = {
  info: null,
  face: null,          // current face id
  faceImages: {},      // id -> input data URL (for the mix slots)
  strengths: {},       // attribute -> strength
  mode: 'edit',
  slot: 'a',
  mix: { a: null, b: null },
  inflight: false,
  pending: null,       // a function to run when the current request is done
};

function notice(text, isError) {
  const el = $('#notice');
  el.textContent = text || '';
  el.classList.toggle('hidden', !text);
  el.classList.toggle('error', !!isError);
}

function status(text) { $('#status').textContent = text || '\u00a0'; }

async function api(path, body, isForm) {
  const opts = { method: body === undefined ? 'GET' : 'POST' };
  if (body !== undefined) {
    if (isForm) { opts.body = body; } else {
      opts.headers = { 'Content-Type': 'application/json' };
      opts.body = JSON.stringify(body);
    }
  }
  const t0 = performance.now();
  const resp = await fetch(path, opts);
  let data;
  try { data = await resp.json(); } catch (e) { data = { error: `HTTP ${resp.status}` }; }
  if (!resp.ok) { throw new Error(data.error || `HTTP ${resp.status}`); }
  data._ms = performance.now() - t0;
  return data;
}

// Run `job` now, or after the request in flight (replacing any older waiting job).
function schedule(job) {
  if (state.inflight) { state.pending = job; return; }
  state.inflight = true;
  document.body.classList.add('busy');
  job().catch((e) => notice(e.message, true)).finally(() => {
    state.inflight = false;
    document.body.classList.remove('busy');
    const next = state.pending;
    state.pending = null;
    if (next) schedule(next);
  });
}

function setResult(url, caption) {
  $('#result-img').src = url;
  $('#result-caption').textContent = caption;
  const a = $('#download');
  a.href = url;
  a.classList.remove('disabled');
}

function showFace(data, label) {
  state.face = data.face;
  state.faceImages[data.face] = data.input;
  document.body.dataset.face = data.face;
  $('#input-img').src = data.input;
  $('#recon-img').src = data.reconstruction;
  $('#recon-caption').textContent = data.exact ? 'reconstruction (exact)' : 'reconstruction';
  $('#variations').textContent = '';
  document.querySelectorAll('#gallery img').forEach((img) =>
    img.classList.toggle('selected', img.dataset.id === data.face));
  status(label);
  if (state.mode === 'mix') { return; }
  if (activeStrengths().length) { requestEdit(); } else { setResult(data.reconstruction, 'edit (no slider moved)'); }
}

function activeStrengths() {
  return Object.entries(state.strengths).filter(([, v]) => v !== 0);
}

function requestEdit() {
  if (!state.face) { notice('Pick a face from the gallery, upload a photo or make a random face first.'); return; }
  schedule(async () => {
    const face = state.face;
    const strengths = Object.fromEntries(activeStrengths());
    const levels = checkedLevels('#edit-levels');
    if (levels && !levels.length) { notice('Tick at least one level for the sliders to change.', true); return; }
    const data = await api('/api/edit', levels ? { face, strengths, levels } : { face, strengths });
    if (face !== state.face) return;
    const desc = Object.entries(data.strengths).map(([k, v]) => `${k} ${v > 0 ? '+' : ''}${v.toFixed(2)}`).join(', ');
    const on = data.levels ? ` (levels ${data.levels.join(', ')})` : '';
    setResult(data.image, desc ? `edit: ${desc}${on}` : 'edit (no slider moved)');
    status(`edit: ${data._ms.toFixed(0)} ms round trip`);
  });
}

function addSlider(name) {
  if (document.querySelector(`input[data-attr="${CSS.escape(name)}"]`)) return;
  const max = Math.min(2, state.info.max_strength);
  const row = document.createElement('div');
  row.className = 'slider';
  const id = `s-${name}`;
  const label = document.createElement('label');
  label.htmlFor = id;
  label.textContent = name.replace(/_/g, ' ');
  const counts = state.info.counts[name];
  if (counts) label.title = `${name}: direction from ${counts[0]} faces with and ${counts[1]} without`;
  const input = document.createElement('input');
  Object.assign(input, { type: 'range', id, min: -max, max, step: 0.05, value: 0 });
  input.dataset.attr = name;
  const out = document.createElement('output');
  out.textContent = '0.00';
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'remove';
  remove.title = `remove ${name}`;
  remove.textContent = '\u00d7';
  input.addEventListener('input', () => {
    const v = parseFloat(input.value);
    out.textContent = v.toFixed(2);
    state.strengths[name] = v;
    if (state.mode !== 'edit') switchTab('edit');
    requestEdit();
  });
  remove.addEventListener('click', () => {
    row.remove();
    const had = state.strengths[name];
    delete state.strengths[name];
    refreshChooser();
    if (had) requestEdit();
  });
  row.append(label, input, out, remove);
  $('#sliders').append(row);
  state.strengths[name] = 0;
  refreshChooser();
}

function refreshChooser() {
  const sel = $('#chooser');
  sel.length = 1;
  for (const name of state.info.attributes) {
    if (name in state.strengths) continue;
    const opt = document.createElement('option');
    opt.value = name;
    opt.textContent = name.replace(/_/g, ' ');
    sel.append(opt);
  }
}

function resetSliders() {
  document.querySelectorAll('#sliders input[type=range]').forEach((input) => {
    input.value = 0;
    input.nextElementSibling.textContent = '0.00';
    state.strengths[input.dataset.attr] = 0;
  });
  if (state.face) setResult($('#recon-img').src, 'edit (reset)');
}

function switchTab(tab) {
  state.mode = tab;
  document.querySelectorAll('.tab').forEach((b) => b.classList.toggle('active', b.dataset.tab === tab));
  for (const t of ['edit', 'mix', 'variations', 'random']) $(`#panel-${t}`).classList.toggle('hidden', t !== tab);
  if (tab === 'mix') { requestMix(); } else if (tab === 'edit' && state.face) { requestEdit(); }
}

function setSlot(slot, faceId) {
  state.mix[slot] = faceId;
  $(`#slot-${slot}-img`).src = state.faceImages[faceId] || '';
  requestMix();
}

function requestMix() {
  const { a, b } = state.mix;
  if (!a || !b) { status('Mix: choose a face for A and for B.'); return; }
  const t = parseFloat($('#mix-t').value);
  schedule(async () => {
    const data = await api('/api/mix', { a, b, t });
    setResult(data.image, `mix: ${(1 - data.t).toFixed(2)} A + ${data.t.toFixed(2)} B`);
    status(`mix: ${data._ms.toFixed(0)} ms round trip`);
  });
}

async function pickGallery(id) {
  if (state.mode === 'mix') {
    const data = await api('/api/encode', { gallery: id });
    state.faceImages[data.face] = data.input;
    setSlot(state.slot, data.face);
    return;
  }
  schedule(async () => {
    const data = await api('/api/encode', { gallery: id });
    notice('');
    showFace(data, `gallery face ${data.meta.file || id}: encoded in ${data._ms.toFixed(0)} ms`);
  });
}

function upload(file) {
  if (!file) return;
  const limits = state.info.limits;
  if (file.size > limits.max_upload_bytes) {
    notice(`${file.name}: ${(file.size / 2 ** 20).toFixed(1)} MiB is too large (at most ${(limits.max_upload_bytes / 2 ** 20).toFixed(0)} MiB).`, true);
    return;
  }
  const form = new FormData();
  form.append('image', file, file.name);
  status(`uploading ${file.name}\u2026`);
  schedule(async () => {
    const data = await api('/api/encode', form, true);
    const al = data.alignment;
    notice(al.notice || '', false);
    const how = { eyes: 'aligned by the eyes', face: 'aligned by the face box', centre: 'centre crop (no face found)' }[al.method] || al.method;
    showFace(data, `${data.meta.file}: ${how}, encoded (${data.ms.toFixed(0)} ms on the server)`);
    document.body.dataset.uploaded = data.face;
  });
}

function randomFace() {
  const temperature = parseFloat($('#temperature').value);
  schedule(async () => {
    const data = await api('/api/sample', { temperature });
    data.input = data.image;
    data.reconstruction = data.image;
    data.exact = true;
    showFace(data, `random face, temperature ${data.temperature}, seed ${data.seed}`);
    setResult(data.image, `sample (T = ${data.temperature})`);
  });
}

// Level checkboxes (1 = finest .. L = coarsest) in `box`; `checked(level)` sets the default.
function levelBoxes(box, name, checked, onChange) {
  state.info.levels.forEach((shape, i) => {
    const label = document.createElement('label');
    const input = document.createElement('input');
    Object.assign(input, { type: 'checkbox', value: i + 1, checked: checked(i + 1), name });
    input.addEventListener('change', onChange);
    label.append(input, ` ${i + 1} (${shape.join('\u00d7')})`);
    label.title = i === 0 ? 'finest level' : (i === state.info.levels.length - 1 ? 'coarsest level' : '');
    $(box).append(label);
  });
}

// The ticked levels of a box; null when all are ticked (no restriction).
function checkedLevels(box) {
  const boxes = [...document.querySelectorAll(`${box} input[type=checkbox]`)];
  const on = boxes.filter((b) => b.checked).map((b) => parseInt(b.value, 10));
  return on.length === boxes.length ? null : on;
}

function requestVariations() {
  if (!state.face) { notice('Pick a face first: variations keep its coarse levels.'); return; }
  const keep = checkedLevels('#keep-levels') || state.info.levels.map((_, i) => i + 1);
  const temperature = parseFloat($('#var-temperature').value);
  schedule(async () => {
    const face = state.face;
    const data = await api('/api/variations', { face, keep, temperature, n: 6 });
    const box = $('#variations');
    box.textContent = '';
    data.images.forEach((url, i) => {
      const img = document.createElement('img');
      Object.assign(img, { src: url, alt: `variation ${i + 1}`, className: 'thumb', tabIndex: 0 });
      img.addEventListener('click', () => setResult(url, `variation ${i + 1}: keep levels ${data.keep.join(', ') || 'none'}, T = ${data.temperature}, seed ${data.seed}`));
      box.append(img);
    });
    setResult(data.images[0], `variation 1: keep levels ${data.keep.join(', ') || 'none'}, T = ${data.temperature}, seed ${data.seed}`);
    document.body.dataset.variations = String(data.images.length);
    status(`${data.images.length} variations: ${data._ms.toFixed(0)} ms round trip`);
  });
}

// Download an animated sweep (of the chosen attribute) or mix (A -> B) as GIF or MP4.
function downloadAnimation(kind, format) {
  let body;
  if (kind === 'sweep') {
    if (!state.face) { notice('Pick a face first.'); return; }
    const levels = checkedLevels('#edit-levels');
    body = { kind, face: state.face, attribute: $('#sweep-attr').value, points: 24, format };
    if (levels) body.levels = levels;
  } else {
    if (!state.mix.a || !state.mix.b) { notice('Mix: choose a face for A and for B first.'); return; }
    body = { kind, a: state.mix.a, b: state.mix.b, points: 24, format };
  }
  status(`making the ${format.toUpperCase()}\u2026`);
  schedule(async () => {
    const resp = await fetch('/api/animate', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    if (!resp.ok) {
      let msg = `HTTP ${resp.status}`;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new Error(msg);
    }
    const blob = await resp.blob();
    const name = (resp.headers.get('Content-Disposition') || '').match(/filename="([^"]+)"/);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name ? name[1] : `glow-${kind}.${format}`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    document.body.dataset.downloaded = `${a.download} ${blob.size}`;
    status(`${a.download}: ${(blob.size / 1024).toFixed(0)} KiB`);
  });
}

async function init() {
  try {
    state.info = await api('/api/info');
  } catch (e) { notice(`Cannot reach the editor server: ${e.message}`, true); return; }
  const info = state.info;
  const about = info.about || {};
  $('#model-info').textContent = `${info.image_shape[0]}\u00d7${info.image_shape[1]} Glow: ${info.model}` +
    (about.test_bits_per_dim ? `, ${about.test_bits_per_dim} bits/dim on held-out faces at ${info.n_bits_x} bits` : '') +
    `. ${info.attributes.length} attribute directions.`;
  if (!info.attributes.length) notice('This model has no attribute directions: start demo.py with --directions FILE for sliders.');
  for (const name of info.default_attributes) addSlider(name);
  refreshChooser();

  $('#chooser').addEventListener('change', (e) => { if (e.target.value) addSlider(e.target.value); e.target.value = ''; });
  $('#reset').addEventListener('click', resetSliders);
  document.querySelectorAll('.tab').forEach((b) => b.addEventListener('click', () => switchTab(b.dataset.tab)));
  document.querySelectorAll('.slot').forEach((b) => b.addEventListener('click', () => {
    state.slot = b.dataset.slot;
    document.querySelectorAll('.slot').forEach((s) => s.classList.toggle('active', s === b));
  }));
  $('#use-current').addEventListener('click', () => { if (state.face) setSlot(state.slot, state.face); });
  $('#mix-t').addEventListener('input', (e) => { $('#mix-t-out').textContent = parseFloat(e.target.value).toFixed(2); requestMix(); });
  $('#temperature').addEventListener('input', (e) => { $('#temperature-out').textContent = parseFloat(e.target.value).toFixed(2); });
  $('#temperature').value = info.sample_temperature;
  $('#temperature-out').textContent = info.sample_temperature.toFixed(2);
  $('#random').addEventListener('click', randomFace);
  const nLevels = info.levels.length;
  levelBoxes('#edit-levels', 'edit-level', () => true, () => { if (state.face) requestEdit(); });
  levelBoxes('#keep-levels', 'keep-level', (l) => l > 1 || nLevels === 1, () => {});
  for (const name of info.attributes) {
    const opt = document.createElement('option');
    opt.value = name;
    opt.textContent = name.replace(/_/g, ' ');
    $('#sweep-attr').append(opt);
  }
  if (info.default_attributes.length) $('#sweep-attr').value = info.default_attributes[0];
  document.querySelectorAll('button.animate').forEach((b) => b.addEventListener('click', () => downloadAnimation(b.dataset.kind, b.dataset.format)));
  $('#var-temperature').addEventListener('input', (e) => { $('#var-temperature-out').textContent = parseFloat(e.target.value).toFixed(2); });
  $('#make-variations').addEventListener('click', requestVariations);
  $('#file').addEventListener('change', (e) => upload(e.target.files[0]));
  const dz = $('#dropzone');
  dz.addEventListener('dragover', (e) => { e.preventDefault(); dz.classList.add('over'); });
  dz.addEventListener('dragleave', () => dz.classList.remove('over'));
  dz.addEventListener('drop', (e) => {
    e.preventDefault();
    dz.classList.remove('over');
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });

  const gal = await api('/api/gallery');
  const box = $('#gallery');
  for (const f of gal.faces) {
    const img = document.createElement('img');
    img.src = f.image;
    img.alt = f.name;
    img.title = f.name;
    img.className = 'thumb';
    img.tabIndex = 0;
    img.dataset.id = f.id;
    state.faceImages[f.id] = f.image;
    img.addEventListener('click', () => pickGallery(f.id).catch((e) => notice(e.message, true)));
    img.addEventListener('keydown', (e) => { if (e.key === 'Enter') img.click(); });
    box.append(img);
  }
  if (!gal.faces.length) {
    $('#gallery').textContent = 'No gallery faces: upload a photo or make a random face.';
    status('Upload a photo or make a random face.');
  } else {
    // The page opens with the first gallery face selected, so the sliders work at once.
    try {
      const data = await api('/api/encode', { gallery: gal.faces[0].id });
      showFace(data, `gallery face ${data.meta.file || gal.faces[0].id}: move a slider to edit it, or pick another face, upload a photo or make a random face.`);
    } catch (e) { notice(e.message, true); }
  }
  document.body.dataset.ready = '1';
}

document.addEventListener('DOMContentLoaded', init);
