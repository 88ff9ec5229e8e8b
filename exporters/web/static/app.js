// The page: file picker, drag and drop, camera, a drawing pad for digit models, top-k bars, the unsure flag.
import { Classifier, DecodeError, decodeImage, drawnPixels } from './edgecls.js';

const $ = (id) => document.getElementById(id);
const result = $('result');
let classifier = null;
let answers = 0;

function showError(message) {
  result.dataset.state = 'error';
  $('error').textContent = message;
  $('error').hidden = false;
  result.dataset.answers = String(++answers);
}

function show(prediction) {
  $('error').hidden = true;
  $('label').textContent = prediction.label;
  $('unsure').hidden = !prediction.unsure;
  result.dataset.unsure = String(prediction.unsure);
  const bars = $('bars');
  bars.replaceChildren(...prediction.top.map(({ label, score }) => {
    const row = document.createElement('div');
    row.className = 'bar';
    const name = document.createElement('span');
    name.textContent = label;
    const fill = document.createElement('i');
    fill.style.width = `${(score * 100).toFixed(1)}%`;
    const pct = document.createElement('span');
    pct.textContent = `${(score * 100).toFixed(1)}%`;
    row.append(name, fill, pct);
    return row;
  }));
  result.dataset.state = 'done';
  if (!result.dataset.firstMs) result.dataset.firstMs = performance.now().toFixed(1);  // since navigation start
  result.dataset.answers = String(++answers);
  window.lastPrediction = prediction;
}

async function classifyBlob(blob, name) {
  try {
    const image = await decodeImage(blob, name);
    const preview = $('preview');
    preview.src = URL.createObjectURL(blob);
    preview.hidden = false;
    show(await classifier.classify(image.rgba, image.width, image.height));
  } catch (err) {
    showError(err instanceof DecodeError ? err.message : `${name}: ${err.message || err}`);
  }
}

function setupFilePicker() {
  $('file').addEventListener('change', (event) => {
    const file = event.target.files[0];
    if (file) classifyBlob(file, file.name);
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer.files[0];
    if (file) classifyBlob(file, file.name);
  });
}

function setupCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;  // http: pages and old browsers
  const button = $('camera');
  button.hidden = false;
  button.addEventListener('click', async () => {
    const video = $('video');
    if (!video.srcObject) {
      try {
        video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
      } catch (err) {
        showError(`camera: ${err.message || err}`);
        return;
      }
      video.hidden = false;
      await video.play();
      button.textContent = 'Take picture';
      return;
    }
    const { videoWidth: w, videoHeight: h } = video;
    show(await classifier.classify(drawnPixels(video, w, h), w, h));
  });
}

function isDigitModel(meta) {
  return meta.labels.every((l) => /^\d$/.test(l)) || (meta.preprocess || []).some((s) => s.op === 'fit' && s.center === 'mass');
}

function setupPad() {
  const pad = $('pad');
  $('draw').hidden = false;
  const ctx = pad.getContext('2d', { willReadFrequently: true });
  const clear = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, pad.width, pad.height); };
  clear();
  let drawing = false, last = null;
  const at = (event) => {
    const r = pad.getBoundingClientRect();
    return [(event.clientX - r.left) * pad.width / r.width, (event.clientY - r.top) * pad.height / r.height];
  };
  pad.addEventListener('pointerdown', (event) => { drawing = true; last = at(event); pad.setPointerCapture(event.pointerId); });
  pad.addEventListener('pointermove', (event) => {
    if (!drawing) return;
    const p = at(event);
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 18; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
  });
  const finish = async () => {
    if (!drawing) return;
    drawing = false;
    const data = ctx.getImageData(0, 0, pad.width, pad.height).data;
    show(await classifier.classify(data, pad.width, pad.height));
  };
  pad.addEventListener('pointerup', finish);
  pad.addEventListener('pointercancel', finish);
  $('clear').addEventListener('click', clear);
}

async function main() {
  try {
    classifier = await Classifier.load(new URL('.', location.href).href);
  } catch (err) {
    showError(`could not load the model: ${err.message || err}`);
    return;
  }
  const meta = classifier.meta;
  const s = meta.input;
  $('title').textContent = `${meta.name} (${meta.variant})`;
  $('model-info').textContent = `${s.height}x${s.width}x${s.channels} input; classes: ${meta.labels.join(', ')}`;
  setupFilePicker();
  setupCamera();
  if (isDigitModel(meta)) setupPad();
  window.edgecls = classifier;  // for scripts and automated checks
  const image = new URLSearchParams(location.search).get('image');
  // An image link is answered before the page reports itself ready, so 'ready' never hides pending work.
  result.dataset.state = image ? 'classifying' : 'ready';
  if (image) {
    try {
      const prediction = await classifier.classifyUrl(new URL(image, location.href).href);
      $('preview').src = image;
      $('preview').hidden = false;
      show(prediction);
    } catch (err) {
      showError(err.message || String(err));
    }
  }
}

main();
