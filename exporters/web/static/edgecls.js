// edgecls in the browser: the model's metadata (model.json, written by `edgecls export --web`),
// onnxruntime-web (WASM, shipped in ./ort/, never fetched from a CDN) and the declared preprocessing.
import * as ort from './ort/ort.wasm.min.mjs';
import { applyPipeline, isUnsure, pillowResize, rgbaToChannels, workingPixels } from './preprocess.js';

const MAX_PIXELS = 64 * 1024 * 1024;  // as the Python runtime: refuse what could exhaust memory

export class DecodeError extends Error {}

/** Any image blob -> RGBA pixels, EXIF-upright, transparency composited on black (as the Python runtime). */
export async function decodeImage(blob, name = 'image') {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image', premultiplyAlpha: 'none',
                                            colorSpaceConversion: 'none' });
  } catch (err) {
    throw new DecodeError(`${name}: not an image, or a corrupt one (the browser could not decode it)`);
  }
  const { width, height } = bitmap;
  if (!width || !height) throw new DecodeError(`${name}: empty image`);
  if (width * height > MAX_PIXELS) throw new DecodeError(`${name}: image too large (${width}x${height} pixels)`);
  return { rgba: drawnPixels(bitmap, width, height), width, height };
}

/** RGBA of anything drawable (a bitmap, a video frame, a canvas) on a black background. */
export function drawnPixels(source, width, height) {
  const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement('canvas'), { width, height });
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height).data;
}

export class Classifier {
  static async load(base = new URL('.', import.meta.url).href) {
    const response = await fetch(new URL('model.json', base));
    if (!response.ok) throw new Error(`model.json: HTTP ${response.status}`);
    const meta = await response.json();
    ort.env.wasm.wasmPaths = new URL('ort/', base).href;
    if (!self.crossOriginIsolated) ort.env.wasm.numThreads = 1;  // threads need COOP/COEP headers
    const started = performance.now();
    const session = await ort.InferenceSession.create(new URL(meta.model_file, base).href,
                                                      { executionProviders: ['wasm'] });
    const classifier = new Classifier(meta, session, performance.now() - started);
    classifier.runtime = { onnxruntimeWeb: ort.env.versions?.web, numThreads: ort.env.wasm.numThreads,
                           crossOriginIsolated: self.crossOriginIsolated };
    return classifier;
  }

  constructor(meta, session, loadMs) {
    this.meta = meta;
    this.session = session;
    this.loadMs = loadMs;
    this.spec = meta.input;
    this.labels = meta.labels;
    this.steps = meta.preprocess || [];
  }

  /** RGBA pixels of any size -> model-ready uint8 pixels (HxWxC) and the statistics preprocessing measured. */
  prepare(rgba, width, height) {
    const spec = this.spec;
    const channels = rgbaToChannels(rgba, width, height, spec.channels);
    if (!this.steps.length) {  // a model exported before declared preprocessing: Pillow's resize to the input size
      return { pixels: pillowResize(channels, width, height, spec.channels, spec.width, spec.height, null).data,
               stats: {} };
    }
    const work = workingPixels(channels, width, height, spec);
    return applyPipeline(this.steps, work.data, work.h, work.w, spec.channels, [spec.height, spec.width]);
  }

  async run(pixels) {
    const { height: h, width: w, channels: c, layout } = this.spec;
    const input = new Float32Array(h * w * c);
    if (layout === 'NCHW') {
      for (let q = 0; q < c; q++) for (let i = 0; i < h * w; i++) input[q * h * w + i] = pixels[i * c + q];
    } else {
      input.set(pixels);
    }
    const dims = layout === 'NCHW' ? [1, c, h, w] : [1, h, w, c];
    const feeds = { [this.session.inputNames[0]]: new ort.Tensor('float32', input, dims) };
    const out = await this.session.run(feeds);
    return Array.from(out[this.session.outputNames[0]].data);
  }

  /** RGBA pixels -> {label, index, score, top, probabilities, unsure, pixels}. */
  async classify(rgba, width, height, topK = 5) {
    const { pixels, stats } = this.prepare(rgba, width, height);
    const probabilities = await this.run(pixels);
    const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    const top = order.slice(0, Math.max(1, Math.min(topK, this.labels.length)))
      .map(([p, i]) => ({ label: this.labels[i], score: p }));
    const [score, index] = order[0];
    return { label: this.labels[index], index, score, top, probabilities, stats, pixels: Array.from(pixels),
             unsure: isUnsure(this.meta.unsure, probabilities, pixels, stats) };
  }

  /** Fetch and classify an image by URL (for `?image=` links and automated checks). */
  async classifyUrl(url, topK = 5) {
    const response = await fetch(url);
    if (!response.ok) throw new DecodeError(`${url}: HTTP ${response.status}`);
    const image = await decodeImage(await response.blob(), url);
    return this.classify(image.rgba, image.width, image.height, topK);
  }
}
