// edgecls declared preprocessing, ported from edgecls/runtime/transforms.py and preprocess.py.
// Each step mirrors its Python namesake (same border-median decisions, same box blur, same separable
// triangle-filter resampling, same whole-pixel placement); float32 rounding is kept where numpy works in
// float32, so the model sees the same pixels as `edgecls infer` (tests/test_web.py checks it in Chromium).
// No DOM here: the page decodes images and hands RGBA pixels in.

const f32 = Math.fround;

/** Python's round(): halves go to the even neighbour (np.round and np.rint do the same). */
export function roundHalfEven(x) {
  const r = Math.round(x);
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// ------------------------------------------------------------------------------------------- decoding

/** RGBA bytes (already composited on black) -> Uint8 HxWxC: grey as Pillow's convert('L')
 *  (ITU-R 601 luma in 16-bit fixed point), or RGB. */
export function rgbaToChannels(rgba, width, height, channels) {
  const n = width * height;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
    if (channels === 1) out[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
    else { out[3 * i] = r; out[3 * i + 1] = g; out[3 * i + 2] = b; }
  }
  return out;
}

/** Pillow's Image.reduce (integer box average, ImagingReduceNxN + ImagingReduceCorners). */
function pillowReduce(src, w, h, c, fx, fy) {
  const ow = Math.ceil(w / fx), oh = Math.ceil(h / fy);
  const out = new Uint8Array(ow * oh * c);
  const mult = (n) => Math.trunc(f32(4294967296 / (256 * n)));
  for (let y = 0; y < oh; y++) {
    const y0 = y * fy, y1 = Math.min(h, y0 + fy);
    for (let x = 0; x < ow; x++) {
      const x0 = x * fx, x1 = Math.min(w, x0 + fx);
      const count = (y1 - y0) * (x1 - x0);
      const m = mult(count), amend = Math.floor(count / 2);
      for (let k = 0; k < c; k++) {
        let ss = amend;
        for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) ss += src[(yy * w + xx) * c + k];
        out[(y * ow + x) * c + k] = Math.floor((ss * m) / 16777216);
      }
    }
  }
  return { data: out, w: ow, h: oh };
}

const PRECISION_BITS = 22;

/** Pillow's precompute_coeffs for the BILINEAR filter, normalised to fixed point as in normalize_coeffs_8bpc. */
function pillowCoeffs(inSize, in0, in1, outSize) {
  const scale = (in1 - in0) / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale;
  const bounds = [], coeffs = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5); if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5); if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const k = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      let t = Math.abs((x + xmin - center + 0.5) * ss);
      const wgt = t < 1.0 ? 1.0 - t : 0.0;
      k[x] = wgt; ww += wgt;
    }
    const ki = new Int32Array(xmax);
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      ki[x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    bounds.push(xmin); coeffs.push(ki);
  }
  return { bounds, coeffs };
}

function clip8(ss) {
  const v = Math.floor(ss / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Pillow's ImagingResample (BILINEAR, 8 bits per channel): horizontal pass, then vertical, uint8 between. */
function pillowResample(src, w, h, c, ow, oh, box) {
  const [bx0, by0, bx1, by1] = box.map(f32);  // the C side takes the box as float
  const needH = ow !== w || bx0 !== 0 || bx1 !== ow;
  const needV = oh !== h || by0 !== 0 || by1 !== oh;
  const vert = pillowCoeffs(h, by0, by1, oh);
  const yFirst = vert.bounds[0];
  const yLast = vert.bounds[oh - 1] + vert.coeffs[oh - 1].length;
  let cur = src, cw = w, ch = h, rowOffset = 0;
  if (needH) {
    const hor = pillowCoeffs(w, bx0, bx1, ow);
    const rows = yLast - yFirst;
    const tmp = new Uint8Array(ow * rows * c);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < ow; x++) {
        const xmin = hor.bounds[x], k = hor.coeffs[x];
        for (let q = 0; q < c; q++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let i = 0; i < k.length; i++) ss += src[((y + yFirst) * w + xmin + i) * c + q] * k[i];
          tmp[(y * ow + x) * c + q] = clip8(ss);
        }
      }
    }
    cur = tmp; cw = ow; ch = rows; rowOffset = yFirst;
  }
  if (!needV) return { data: cur, w: cw, h: ch };
  const out = new Uint8Array(cw * oh * c);
  for (let y = 0; y < oh; y++) {
    const ymin = vert.bounds[y] - rowOffset, k = vert.coeffs[y];
    for (let x = 0; x < cw; x++) {
      for (let q = 0; q < c; q++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let i = 0; i < k.length; i++) ss += cur[((ymin + i) * cw + x) * c + q] * k[i];
        out[(y * cw + x) * c + q] = clip8(ss);
      }
    }
  }
  return { data: out, w: cw, h: oh };
}

/** Pillow's Image.resize(size, BILINEAR, reducing_gap) on L or RGB pixels (reducingGap null: none). */
export function pillowResize(src, w, h, c, ow, oh, reducingGap = 2.0) {
  let box = [0, 0, w, h], img = { data: src, w, h };
  if (ow === w && oh === h) return img;
  const fx = reducingGap ? Math.trunc(w / ow / reducingGap) || 1 : 1;
  const fy = reducingGap ? Math.trunc(h / oh / reducingGap) || 1 : 1;
  if (fx > 1 || fy > 1) {
    img = pillowReduce(src, w, h, c, fx, fy);
    box = [0, 0, w / fx, h / fy];
  }
  return pillowResample(img.data, img.w, img.h, c, ow, oh, box);
}

export const WORK_FACTOR = 4;

/** preprocess.working_pixels: images larger than WORK_FACTOR x the model input are first shrunk, aspect kept. */
export function workingPixels(pixels, width, height, spec) {
  const c = spec.channels;
  const cap = WORK_FACTOR * Math.max(spec.height, spec.width);
  if (Math.max(width, height) <= cap) return { data: pixels, w: width, h: height };
  const scale = cap / Math.max(width, height);
  const ow = Math.max(1, roundHalfEven(width * scale)), oh = Math.max(1, roundHalfEven(height * scale));
  return pillowResize(pixels, width, height, c, ow, oh);
}

// ------------------------------------------------------------------------------------------- helpers

class Work {
  constructor(data, h, w, c) {
    this.px = Float32Array.from(data);  // HxWxC, 0-255
    this.h = h; this.w = w; this.c = c;
    this.box = [0, 0, h, w];  // y0, x0, y1, x1
    this.out = null;  // Float32Array oh x ow x c once resampled
    this.stats = {};
  }
}

function luma(px, n, c) {
  if (c === 1) return Float32Array.from(px);
  const out = new Float32Array(n);
  const a = f32(0.299), b = f32(0.587), d = f32(0.114);
  for (let i = 0; i < n; i++) out[i] = f32(f32(f32(px[3 * i] * a) + f32(px[3 * i + 1] * b)) + f32(px[3 * i + 2] * d));
  return out;
}

function border(l, h, w) {
  const v = [];
  for (let x = 0; x < w; x++) v.push(l[x]);
  for (let x = 0; x < w; x++) v.push(l[(h - 1) * w + x]);
  for (let y = 1; y < h - 1; y++) v.push(l[y * w]);
  for (let y = 1; y < h - 1; y++) v.push(l[y * w + w - 1]);
  return v;
}

/** transforms._background: the border's median as one partition picks it (the upper middle when even). */
function kth(values, k) {
  return Float64Array.from(values).sort()[k];
}

function borderMedian(l, h, w) {
  const b = border(l, h, w);
  return kth(b, b.length >> 1);
}

function minMax(a) {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.length; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i]; }
  return [lo, hi];
}

function boxBlur(l, h, w, k) {
  if (k <= 1) return l;
  const pad = k >> 1;
  const ph = h + k - 1, pw = w + k - 1;
  const cs = new Float64Array((ph + 1) * (pw + 1));  // summed-area table, one row/column of zeros in front
  for (let y = 0; y < ph; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - pad));
    let row = 0;
    for (let x = 0; x < pw; x++) {
      const sx = Math.min(w - 1, Math.max(0, x - pad));
      row += l[sy * w + sx];
      cs[(y + 1) * (pw + 1) + x + 1] = cs[y * (pw + 1) + x + 1] + row;
    }
  }
  const out = new Float32Array(h * w);
  const W = pw + 1;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const s = cs[(y + k) * W + x + k] - cs[y * W + x + k] - cs[(y + k) * W + x] + cs[y * W + x];
    out[y * w + x] = s / (k * k);
  }
  return out;
}

/** transforms._weights for one image and axis: (n_out x n_in) matrix and which outputs fall inside. */
function weights(nOut, nIn, start, scale, offset) {
  const wts = new Float32Array(nOut * nIn);
  const inside = new Array(nOut);
  const support = f32(Math.max(1.0, 1.0 / scale));
  for (let o = 0; o < nOut; o++) {
    const centre = f32(start + (o + 0.5 - offset) / scale);
    let total = 0;
    for (let i = 0; i < nIn; i++) {
      let t = f32(Math.abs(f32(f32(i + 0.5) - centre)));
      t = f32(1.0 - f32(t / support));
      const v = t > 0 ? t : 0;
      wts[o * nIn + i] = v; total += v;
    }
    total = f32(total);
    inside[o] = centre >= 0 && centre <= nIn && total > 0;
    for (let i = 0; i < nIn; i++) {
      const v = total > 0 ? f32(wts[o * nIn + i] / total) : wts[o * nIn + i];
      wts[o * nIn + i] = inside[o] ? v : 0;
    }
  }
  return { wts, inside };
}

function resample(work, shape, sy, sx, offY, offX, fill) {
  const [oh, ow] = shape;
  const { h, w, c, px } = work;
  const Y = weights(oh, h, work.box[0], sy, offY);
  const X = weights(ow, w, work.box[1], sx, offX);
  const tmp = new Float64Array(oh * w * c);  // Wy @ image
  for (let o = 0; o < oh; o++) for (let y = 0; y < h; y++) {
    const k = Y.wts[o * h + y];
    if (k === 0) continue;
    for (let x = 0; x < w; x++) for (let q = 0; q < c; q++) tmp[(o * w + x) * c + q] += k * px[(y * w + x) * c + q];
  }
  const out = new Float32Array(oh * ow * c);
  for (let o = 0; o < oh; o++) for (let p = 0; p < ow; p++) for (let q = 0; q < c; q++) {
    let s = 0;
    if (fill && !(Y.inside[o] && X.inside[p])) { out[(o * ow + p) * c + q] = fill; continue; }
    for (let x = 0; x < w; x++) { const k = X.wts[p * w + x]; if (k !== 0) s += tmp[(o * w + x) * c + q] * k; }
    out[(o * ow + p) * c + q] = s;
  }
  work.out = out;
}

function boxSize(work) {
  return [Math.max(work.box[2] - work.box[0], 1e-6), Math.max(work.box[3] - work.box[1], 1e-6)];
}

/** unsure.midtone_fraction for one image: share of inked pixels (> 38) that are mid-tones (< 217). */
export function midtoneFraction(values, region) {
  let ink = 0, mid = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > 38 && (!region || region[i])) { ink++; if (values[i] < 217) mid++; }
  }
  return ink > 0 ? mid / ink : 1.0;
}

// ------------------------------------------------------------------------------------------- the steps

export const STEPS = {
  polarity(work, shape, { background }) {
    const n = work.h * work.w;
    const l = luma(work.px, n, work.c);
    const bg = borderMedian(l, work.h, work.w);
    const [lo, hi] = minMax(l);
    const darkerInk = f32(bg - lo) > f32(hi - bg);
    const invert = background === 'dark' ? darkerInk : (!darkerInk && hi > bg);
    if (invert) for (let i = 0; i < work.px.length; i++) work.px[i] = 255 - work.px[i];
  },

  levels(work, shape, { floor, noise }) {
    const onOut = work.out !== null;
    const src = onOut ? work.out : work.px;
    const [h, w] = onOut ? shape : [work.h, work.w];
    const l = luma(src, h * w, work.c);
    const bg = borderMedian(l, h, w);
    const span = f32(minMax(l)[1] - bg);
    const gain = span > 8.0 ? f32(255.0 / span) : 0;  // < 8 grey levels: nothing there
    let cut = floor || 0;
    if (noise) {  // the paper's grain: 1.4826 x median absolute deviation of the border
      const b = border(l, h, w);
      const mad = kth(b.map((v) => f32(Math.abs(f32(v - bg)))), b.length >> 1);
      cut = Math.max(cut, Math.min(1.0, f32(f32(f32(f32(noise * 1.4826) * mad) * gain) / 255.0)));
    }
    // one affine map, then one clip, in float32 as numpy does it
    const keep = cut < 1.0 ? 1.0 / (1.0 - cut) : 0;
    const g = f32(gain * keep), shift = f32(255.0 * cut * keep), b32 = f32(bg);
    const x = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = f32(f32(f32(src[i] - b32) * g) - shift);
      x[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
    if (onOut) work.out = x; else work.px = x;
  },

  crop_to_content(work, shape, { threshold, margin }) {
    const { h, w } = work;
    const l = luma(work.px, h * w, work.c);
    const k = Math.max(1, roundHalfEven(Math.min(h, w) / Math.max(...shape)));
    const blurred = boxBlur(l, h, w, k);
    const limit = f32(threshold * 255.0);
    let y0 = -1, y1 = -1, x0 = w, x1 = -1;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      if (blurred[y * w + x] >= limit) {
        if (y0 < 0) y0 = y;
        y1 = y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
      }
    }
    if (y0 < 0) return;  // no ink: keep the whole frame
    const pad = margin * Math.max(y1 + 1 - y0, x1 + 1 - x0);
    work.box = [y0 - pad, x0 - pad, y1 + 1 + pad, x1 + 1 + pad];
  },

  measure(work, shape, { statistic }) {
    const { h, w } = work;
    let l = luma(work.px, h * w, work.c);
    if (Math.min(h, w) > 2 * Math.max(...shape)) {
      const med = new Float32Array(h * w), win = new Float32Array(9);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        let i = 0;
        for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
          const yy = Math.min(h - 1, Math.max(0, y + dy)), xx = Math.min(w - 1, Math.max(0, x + dx));
          win[i++] = l[yy * w + xx];
        }
        win.sort();
        med[y * w + x] = win[4];
      }
      l = med;
    }
    const b = work.box, region = new Uint8Array(h * w);
    for (let y = 0; y < h; y++) {
      const inY = y + 0.5 >= b[0] && y + 0.5 <= b[2];
      for (let x = 0; x < w; x++) region[y * w + x] = inY && x + 0.5 >= b[1] && x + 0.5 <= b[3] ? 1 : 0;
    }
    work.stats[statistic] = midtoneFraction(l, region);
  },

  fit(work, shape, { size, center, fill }) {
    const [oh, ow] = shape;
    const [bh, bw] = boxSize(work);
    const scale = Math.min(size, oh, ow) / Math.max(bh, bw);
    const b = work.box;
    let cy = (b[0] + b[2]) / 2, cx = (b[1] + b[3]) / 2, ty, tx;
    if (center === 'mass') {
      const { h, w } = work;
      const l = luma(work.px, h * w, work.c);
      const rowSum = new Float64Array(h), colSum = new Float64Array(w);
      let total = 0;
      for (let y = 0; y < h; y++) {
        if (!(y + 0.5 >= b[0] && y + 0.5 <= b[2])) continue;
        for (let x = 0; x < w; x++) {
          if (!(x + 0.5 >= b[1] && x + 0.5 <= b[3])) continue;
          const m = l[y * w + x];
          rowSum[y] += m; colSum[x] += m; total += m;
        }
      }
      if (total > 0) {
        let sy = 0, sx = 0;
        for (let y = 0; y < h; y++) sy += f32(rowSum[y]) * (y + 0.5);
        for (let x = 0; x < w; x++) sx += f32(colSum[x]) * (x + 0.5);
        cy = f32(sy) / total; cx = f32(sx) / total;
      }
      ty = Math.floor(oh / 2) + 0.5; tx = Math.floor(ow / 2) + 0.5;
    } else {
      ty = oh / 2; tx = ow / 2;
    }
    const offY = roundHalfEven(ty - (cy - b[0]) * scale);
    const offX = roundHalfEven(tx - (cx - b[1]) * scale);
    resample(work, shape, scale, scale, offY, offX, fill);
  },

  resize(work, shape, { mode, fill }) {
    const [oh, ow] = shape;
    const [bh, bw] = boxSize(work);
    let sy, sx;
    if (mode === 'stretch') { sy = oh / bh; sx = ow / bw; }
    else { sy = sx = (mode === 'letterbox' ? Math.min : Math.max)(oh / bh, ow / bw); }
    resample(work, shape, sy, sx, (oh - bh * sy) / 2, (ow - bw * sx) / 2, fill);
  },
};

/** Pipeline.apply for one image: working pixels (Uint8 HxWxC) -> model-ready Uint8 (oh x ow x c) and stats. */
export function applyPipeline(steps, pixels, h, w, c, shape) {
  const work = new Work(pixels, h, w, c);
  for (const step of steps) {
    const fn = STEPS[step.op];
    if (!fn) throw new Error(`unknown preprocessing step ${JSON.stringify(step.op)}`);
    fn(work, shape, step);
  }
  if (work.out === null) STEPS.resize(work, shape, { mode: 'stretch', fill: 0 });
  const out = new Uint8Array(work.out.length);
  for (let i = 0; i < out.length; i++) {
    const v = roundHalfEven(work.out[i]);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return { pixels: out, stats: work.stats };
}

/** unsure.UnsureRule.flags for one image. */
export function isUnsure(rule, probabilities, pixels, stats) {
  if (!rule) return false;
  let top = -Infinity;
  for (const p of probabilities) if (p > top) top = p;
  let unsure = top < (rule.min_confidence ?? 0);
  let mean = 0;
  for (const v of pixels) mean += v;
  mean /= pixels.length;
  let variance = 0;
  for (const v of pixels) variance += (v - mean) * (v - mean);
  if (Math.sqrt(variance / pixels.length) < 2.0) unsure = true;  // FLAT_STD: a flat image shows nothing
  if (rule.statistic) {
    const value = stats && rule.statistic in stats ? stats[rule.statistic] : midtoneFraction(pixels);
    if (rule.max_statistic !== undefined && value > rule.max_statistic) unsure = true;
  }
  return unsure;
}
