/**
 * Line charts as standalone SVG for the benchmark's documentation, meant to be
 * shown by GitHub through `![](plot.svg)`. Pure and deterministic: the same
 * options give the same bytes, so a regenerated plot only shows up in a diff
 * when its data changed. There are no font metrics without a renderer, so text
 * widths are estimated; that is enough to leave room for tick labels and to
 * wrap the legend.
 */

export interface Point { x: number, y: number }

export interface Series {
  name: string
  /** Drawn in x order; non-finite points, and on a log axis non-positive ones, are skipped. */
  points: Point[]
  dashed?: boolean
}

export type Scale = 'linear' | 'log'

export interface ChartOptions {
  title: string
  xLabel: string
  yLabel: string
  /** log is base 10. */
  xScale?: Scale
  yScale?: Scale
  /** A linear y axis includes 0 (default true); ignored on a log axis. */
  yFrom0?: boolean
  series: Series[]
  /** Pixels, default 640 × 360. */
  width?: number
  height?: number
  /** Tick labels; by default 10⁵ on log axes and 1,234 on linear ones. */
  xFormat?: (x: number) => string
  yFormat?: (y: number) => string
  /** Explicit x ticks (e.g. the measured sizes); the x axis then spans them as well as the data. */
  xTicks?: number[]
}

/** Okabe–Ito, in an order that keeps the first colours apart; yellow is last because it is faint on white. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442']

const FONT = { title: 16, axis: 13, tick: 12, legend: 12 }
const INK = '#222'

/** Sans-serif text averages about 0.55 em a character (digits 0.56, lowercase less). */
function textWidth(text: string, size: number): number {
  return text.length * size * 0.55
}

/** Coordinates to 0.1 px: small files, and no float noise between runs. */
function r(v: number): string {
  return String(Math.round(v * 10) / 10)
}

// XML 1.0 forbids these characters even as references, so they are dropped rather than escaped.
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' }

function esc(text: string): string {
  return text.toWellFormed().replace(NOT_XML, '').replace(/[&<>"']/g, c => ENTITIES[c]!)
}

const SUPERSCRIPT = '⁰¹²³⁴⁵⁶⁷⁸⁹'

function superscript(n: number): string {
  return String(n).replace('-', '⁻').replace(/\d/g, d => SUPERSCRIPT[Number(d)]!)
}

/** 10^k written out, so that 1e-3 is exactly 0.001 rather than what pow rounds to. */
function decade(k: number): number {
  return Number(`1e${k}`)
}

/** The k with 10^k <= v < 10^(k+1); log10 alone can land one off for large or tiny v. */
function exponent(v: number): number {
  let k = Math.floor(Math.log10(v))
  if (decade(k + 1) <= v) k++
  if (decade(k) > v) k--
  return k
}

/** Drops float noise (0.30000000000000004) and negative zero from computed ticks. */
function clean(v: number): number {
  return Number(v.toPrecision(12)) + 0
}

/** When v is m × 10^k with a whole m from 1 to 9, that m and k. */
function mantissa(v: number): { m: number, k: number } | undefined {
  if (!(v > 0)) return undefined
  const k = exponent(v)
  const m = clean(v / decade(k))
  return Number.isInteger(m) ? { m, k } : undefined
}

function formatPlain(v: number): string {
  return v.toLocaleString('en-US', { maximumFractionDigits: 6 })
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']

/** 100 B, 10 KiB, 1.5 MiB (binary units, at most one decimal). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const round = (v: number) => Math.round(v * 10) / 10
  let value = Math.abs(n)
  let unit = 0
  // Rounded, so that 1,048,575 B reads 1 MiB rather than 1024 KiB.
  while (unit < BYTE_UNITS.length - 1 && round(value) >= 1024) {
    value /= 1024
    unit++
  }
  return `${n < 0 ? '-' : ''}${round(value).toLocaleString('en-US')} ${BYTE_UNITS[unit]}`
}

/** 10⁵ for powers of ten from 10 up, else 1,234,567. */
export function formatCount(n: number): string {
  const split = n >= 10 ? mantissa(n) : undefined
  if (split?.m === 1) return `10${superscript(split.k)}`
  return n.toLocaleString('en-US', { maximumFractionDigits: 2 })
}

/** Log-axis default: 10⁵ for decades, 2×10⁵ between them. */
function formatPower(v: number): string {
  const split = mantissa(v)
  if (!split) return formatPlain(v)
  return `${split.m === 1 ? '' : `${split.m}×`}10${superscript(split.k)}`
}

/** The 1, 2 or 5 × 10^k step that cuts span into about count parts. */
function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count)
  const magnitude = decade(exponent(raw))
  const m = raw / magnitude
  return (m <= 1.5 ? 1 : m <= 3 ? 2 : m <= 7 ? 5 : 10) * magnitude
}

function multiples(lo: number, hi: number, step: number): number[] {
  const ticks: number[] = []
  for (let i = Math.ceil(lo / step - 1e-9); i <= Math.floor(hi / step + 1e-9); i++) ticks.push(clean(i * step))
  return ticks
}

/** The largest (or, up, smallest) m × 10^k at or beyond v, m one of mantissas, so a log axis ends on a readable value. */
function logEnd(v: number, up: boolean, mantissas: number[]): number {
  const k = exponent(v)
  const candidates = [...mantissas, 10].map(m => clean(m * decade(k)))
  return up ? candidates.find(c => c >= v * (1 - 1e-9))! : candidates.reverse().find(c => c <= v * (1 + 1e-9))!
}

/** Decades if at least two fit (thinned to about count), else 1/2/5 steps, else linear steps for a very narrow range. */
function logTicks(lo: number, hi: number, count: number): number[] {
  const exponents: number[] = []
  let first = exponent(lo)
  if (decade(first) < lo * (1 - 1e-9)) first++
  for (let k = first; decade(k) <= hi * (1 + 1e-9); k++) exponents.push(k)
  if (exponents.length >= 2) {
    const every = Math.ceil(exponents.length / count)
    return exponents.filter(k => k % every === 0).map(decade)
  }
  const steps: number[] = []
  for (let k = exponent(lo); decade(k) <= hi; k++) {
    for (const m of [1, 2, 5]) {
      const v = clean(m * decade(k))
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) steps.push(v)
    }
  }
  return steps.length >= 2 ? steps : multiples(lo, hi, niceStep(hi - lo, count))
}

interface Axis {
  scale: Scale
  lo: number
  hi: number
  ticks: number[]
  format: (v: number) => string
}

/** Where v falls between the axis ends, 0 to 1. */
function fraction(axis: Axis, v: number): number {
  if (axis.scale === 'log') return (Math.log10(v) - Math.log10(axis.lo)) / (Math.log10(axis.hi) - Math.log10(axis.lo))
  return (v - axis.lo) / (axis.hi - axis.lo)
}

function linearFormat(step: number): (v: number) => string {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9))
  return v => v.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals })
}

/**
 * The x axis spans exactly the data (and any explicit ticks), so the first and
 * last measurement sit on the plot's edges; a lone value gets room either side.
 */
function xAxis(values: number[], scale: Scale, count: number, explicit: number[] | undefined, format: ((v: number) => string) | undefined): Axis {
  let lo = Math.min(...values)
  let hi = Math.max(...values)
  if (lo === hi) {
    if (scale === 'log') [lo, hi] = [lo / Math.sqrt(10), hi * Math.sqrt(10)]
    else [lo, hi] = lo === 0 ? [-1, 1] : [lo - Math.abs(lo) / 2, hi + Math.abs(hi) / 2]
  }
  if (scale === 'log') return { scale, lo, hi, ticks: explicit ?? logTicks(lo, hi, count), format: format ?? formatPower }
  if (explicit) return { scale, lo, hi, ticks: explicit, format: format ?? formatPlain }
  const step = niceStep(hi - lo, count)
  return { scale, lo, hi, ticks: multiples(lo, hi, step), format: format ?? linearFormat(step) }
}

/** The y axis is widened to tick values, so the top and bottom gridlines frame the data. */
function yAxis(values: number[], scale: Scale, count: number, from0: boolean, format: ((v: number) => string) | undefined): Axis {
  let lo = Math.min(...values)
  let hi = Math.max(...values)
  if (scale === 'log') {
    if (lo === hi) [lo, hi] = [lo / Math.sqrt(10), hi * Math.sqrt(10)]
    // Data over a decade or more gets whole decades, every gridline a labelled power of ten;
    // narrower data would shrink to a sliver that way, so it ends on 1, 2 or 5 × 10^k instead.
    const mantissas = hi / lo >= 10 ? [1] : [1, 2, 5]
    lo = logEnd(lo, false, mantissas)
    hi = logEnd(hi, true, mantissas)
    return { scale, lo, hi, ticks: logTicks(lo, hi, count), format: format ?? formatPower }
  }
  if (from0) [lo, hi] = [Math.min(lo, 0), Math.max(hi, 0)]
  if (lo === hi) [lo, hi] = lo === 0 ? [0, 1] : [lo - Math.abs(lo) / 10, hi + Math.abs(hi) / 10]
  const step = niceStep(hi - lo, count)
  lo = clean(Math.floor(lo / step + 1e-9) * step)
  hi = clean(Math.ceil(hi / step - 1e-9) * step)
  return { scale, lo, hi, ticks: multiples(lo, hi, step), format: format ?? linearFormat(step) }
}

interface LegendItem { label: string, color: string, dashed: boolean, width: number }

/** Legend entries in rows no wider than maxWidth (at least one entry a row). */
function legendRows(items: LegendItem[], maxWidth: number): LegendItem[][] {
  const rows: LegendItem[][] = []
  let used = Infinity
  for (const item of items) {
    if (used + item.width > maxWidth) {
      rows.push([])
      used = 0
    }
    rows.at(-1)!.push(item)
    used += item.width
  }
  return rows
}

const SWATCH = 24
const LEGEND_GAP = 6
const LEGEND_SPACING = 20

function dash(dashed: boolean): string {
  return dashed ? ' stroke-dasharray="6 4"' : ''
}

/**
 * The chart as an SVG document (ending in a newline). A series with nothing
 * drawable stays in the legend, marked "(no data)"; with no data at all the
 * plot area says "no data". Colours follow the order of `series` and repeat
 * after eight.
 */
export function lineChart(options: ChartOptions): string {
  const width = options.width ?? 640
  const height = options.height ?? 360
  if (!(width > 0 && height > 0 && Number.isFinite(width) && Number.isFinite(height))) throw new RangeError(`chart size ${width} × ${height} is not positive`)
  const xScale = options.xScale ?? 'linear'
  const yScale = options.yScale ?? 'linear'
  const drawable = (v: number, scale: Scale) => Number.isFinite(v) && (scale === 'linear' || v > 0)

  const series = options.series.map((s, i) => ({
    ...s,
    color: PALETTE[i % PALETTE.length]!,
    points: s.points.filter(p => drawable(p.x, xScale) && drawable(p.y, yScale)).sort((a, b) => a.x - b.x),
  }))
  const points = series.flatMap(s => s.points)

  const items = series.map(s => {
    const label = s.points.length ? s.name : `${s.name} (no data)`
    return { label, color: s.color, dashed: s.dashed ?? false, width: SWATCH + LEGEND_GAP + textWidth(label, FONT.legend) + LEGEND_SPACING }
  })
  const rows = legendRows(items, width - 32)
  const legendTop = 50
  const plotTop = rows.length ? legendTop + (rows.length - 1) * 20 + 18 : 44
  const plotBottom = height - 50

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${r(width)}" height="${r(height)}" viewBox="0 0 ${r(width)} ${r(height)}" font-family="sans-serif" role="img">`,
    `<title>${esc(options.title)}</title>`,
    `<rect width="${r(width)}" height="${r(height)}" fill="#fff"/>`,
    `<text x="${r(width / 2)}" y="26" text-anchor="middle" font-size="${FONT.title}" font-weight="bold" fill="${INK}">${esc(options.title)}</text>`,
  ]

  out.push(`<g class="legend" font-size="${FONT.legend}" fill="${INK}">`)
  rows.forEach((row, i) => {
    const baseline = legendTop + i * 20
    let left = (width - row.reduce((a, item) => a + item.width, -LEGEND_SPACING)) / 2
    for (const item of row) {
      out.push(`<line x1="${r(left)}" y1="${r(baseline - 4)}" x2="${r(left + SWATCH)}" y2="${r(baseline - 4)}" stroke="${item.color}" stroke-width="2"${dash(item.dashed)}/>`)
      out.push(`<circle cx="${r(left + SWATCH / 2)}" cy="${r(baseline - 4)}" r="3.5" fill="${item.color}" stroke="#fff"/>`)
      out.push(`<text x="${r(left + SWATCH + LEGEND_GAP)}" y="${r(baseline)}">${esc(item.label)}</text>`)
      left += item.width
    }
  })
  out.push('</g>')

  if (!points.length) {
    const plotLeft = 64
    const plotRight = width - 20
    out.push(`<rect class="plot" x="${r(plotLeft)}" y="${r(plotTop)}" width="${r(plotRight - plotLeft)}" height="${r(plotBottom - plotTop)}" fill="none" stroke="#666"/>`)
    out.push(`<text x="${r((plotLeft + plotRight) / 2)}" y="${r((plotTop + plotBottom) / 2 + 5)}" text-anchor="middle" font-size="${FONT.axis}" fill="#666">no data</text>`)
    axisTitles(out, options, plotLeft, plotRight, plotTop, plotBottom, height)
    out.push('</svg>')
    return `${out.join('\n')}\n`
  }

  // Roughly one y tick per 55 px and one x tick per 100 px keeps labels apart.
  const y = yAxis(points.map(p => p.y), yScale, Math.max(2, Math.floor((plotBottom - plotTop) / 55)), options.yFrom0 ?? true, options.yFormat)
  const yLabels = y.ticks.map(v => y.format(v))
  const plotLeft = 36 + Math.max(...yLabels.map(t => textWidth(t, FONT.tick)))
  // Explicit ticks that are all unusable on this scale leave the choice to the chart.
  const explicitX = options.xTicks?.filter(v => drawable(v, xScale)).sort((a, b) => a - b)
  const given = explicitX?.length ? explicitX : undefined
  const plotWidth = width - plotLeft - 20
  const x = xAxis([...points.map(p => p.x), ...(given ?? [])], xScale, Math.max(2, Math.floor(plotWidth / 100)), given, options.xFormat)
  const xLabels = x.ticks.map(v => x.format(v))
  // Tick labels are centred on their ticks, so the last one may stick out past the plot's right edge.
  const lastX = x.ticks.length ? fraction(x, x.ticks.at(-1)!) : 0
  const overhang = x.ticks.length ? textWidth(xLabels.at(-1)!, FONT.tick) / 2 + 6 - (1 - lastX) * plotWidth : 0
  const plotRight = width - Math.max(20, overhang)
  const px = (v: number) => plotLeft + fraction(x, v) * (plotRight - plotLeft)
  const py = (v: number) => plotBottom - fraction(y, v) * (plotBottom - plotTop)

  out.push('<g class="grid" stroke="#e4e4e4">')
  for (const v of y.ticks) out.push(`<line x1="${r(plotLeft)}" y1="${r(py(v))}" x2="${r(plotRight)}" y2="${r(py(v))}"/>`)
  for (const v of x.ticks) out.push(`<line x1="${r(px(v))}" y1="${r(plotTop)}" x2="${r(px(v))}" y2="${r(plotBottom)}"/>`)
  out.push('</g>')

  out.push(`<g class="ticks" stroke="#666">`)
  for (const v of y.ticks) out.push(`<line x1="${r(plotLeft - 4)}" y1="${r(py(v))}" x2="${r(plotLeft)}" y2="${r(py(v))}"/>`)
  for (const v of x.ticks) out.push(`<line x1="${r(px(v))}" y1="${r(plotBottom)}" x2="${r(px(v))}" y2="${r(plotBottom + 4)}"/>`)
  out.push('</g>')

  out.push(`<g class="y-ticks" font-size="${FONT.tick}" text-anchor="end" fill="#444">`)
  y.ticks.forEach((v, i) => out.push(`<text x="${r(plotLeft - 7)}" y="${r(py(v) + 4)}">${esc(yLabels[i]!)}</text>`))
  out.push('</g>')
  out.push(`<g class="x-ticks" font-size="${FONT.tick}" text-anchor="middle" fill="#444">`)
  x.ticks.forEach((v, i) => out.push(`<text x="${r(px(v))}" y="${r(plotBottom + 18)}">${esc(xLabels[i]!)}</text>`))
  out.push('</g>')

  out.push(`<rect class="plot" x="${r(plotLeft)}" y="${r(plotTop)}" width="${r(plotRight - plotLeft)}" height="${r(plotBottom - plotTop)}" fill="none" stroke="#666"/>`)
  axisTitles(out, options, plotLeft, plotRight, plotTop, plotBottom, height)

  // Series after the frame, so markers on the plot's edge are drawn over it.
  for (const s of series) {
    if (!s.points.length) continue
    out.push(`<g class="series" fill="${s.color}">`)
    const coords = s.points.map(p => `${r(px(p.x))},${r(py(p.y))}`)
    if (coords.length > 1) out.push(`<polyline points="${coords.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"${dash(s.dashed ?? false)}/>`)
    for (const p of s.points) out.push(`<circle cx="${r(px(p.x))}" cy="${r(py(p.y))}" r="3.5" stroke="#fff"/>`)
    out.push('</g>')
  }
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

function axisTitles(out: string[], options: ChartOptions, plotLeft: number, plotRight: number, plotTop: number, plotBottom: number, height: number): void {
  out.push(`<text x="${r((plotLeft + plotRight) / 2)}" y="${r(height - 12)}" text-anchor="middle" font-size="${FONT.axis}" fill="${INK}">${esc(options.xLabel)}</text>`)
  const cy = (plotTop + plotBottom) / 2
  out.push(`<text x="18" y="${r(cy)}" transform="rotate(-90 18 ${r(cy)})" text-anchor="middle" font-size="${FONT.axis}" fill="${INK}">${esc(options.yLabel)}</text>`)
}
