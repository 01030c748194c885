import { describe, expect, it } from 'vitest'
import { formatBytes, formatCount, lineChart, type ChartOptions } from './svg.js'

/**
 * A small well-formedness check (there is no XML parser among the dependencies):
 * one root, balanced tags, quoted attributes without duplicates, and no bare
 * `<` or `&` in text or attribute values. Throws on the first problem.
 */
function checkXml(text: string): void {
  const open: string[] = []
  let roots = 0
  let at = 0
  const checkText = (chunk: string) => {
    if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);)/i.test(chunk)) throw new Error(`bare & in ${JSON.stringify(chunk)}`)
  }
  for (const match of text.matchAll(/<[^<>]*>/g)) {
    const between = text.slice(at, match.index)
    if (between.includes('<')) throw new Error(`bare < near ${JSON.stringify(between)}`)
    checkText(between)
    if (between.trim() && !open.length) throw new Error(`text outside the root: ${JSON.stringify(between)}`)
    at = match.index + match[0].length
    const tag = /^<(\/?)([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w:.-]*="[^"<]*")*)\s*(\/?)>$/.exec(match[0])
    if (!tag) throw new Error(`malformed tag ${match[0]}`)
    const [, closing, name, attributes, selfClosing] = tag
    const names = [...attributes!.matchAll(/([\w:.-]+)="([^"]*)"/g)].map(a => {
      checkText(a[2]!)
      return a[1]!
    })
    if (new Set(names).size !== names.length) throw new Error(`duplicate attribute in ${match[0]}`)
    if (closing) {
      if (attributes || selfClosing) throw new Error(`malformed end tag ${match[0]}`)
      if (open.pop() !== name) throw new Error(`</${name}> does not close the open element`)
      continue
    }
    if (!open.length && ++roots > 1) throw new Error('more than one root element')
    if (!selfClosing) open.push(name!)
  }
  const rest = text.slice(at)
  if (rest.trim() || rest.includes('<')) throw new Error('text after the root')
  if (open.length) throw new Error(`unclosed <${open.join('>, <')}>`)
  if (!roots) throw new Error('no root element')
}

function attributes(element: string): Record<string, string> {
  return Object.fromEntries([...element.matchAll(/([\w:-]+)="([^"]*)"/g)].map(m => [m[1]!, m[2]!]))
}

function elements(svg: string, name: string): Record<string, string>[] {
  return [...svg.matchAll(new RegExp(`<${name}\\b[^>]*>`, 'g'))].map(m => attributes(m[0]))
}

function plotArea(svg: string): { left: number, right: number, top: number, bottom: number } {
  const plot = elements(svg, 'rect').find(a => a.class === 'plot')!
  const left = Number(plot.x)
  const top = Number(plot.y)
  return { left, right: left + Number(plot.width), top, bottom: top + Number(plot.height) }
}

/** The series' markers, in the order drawn. */
function markers(svg: string): { x: number, y: number }[] {
  const drawn = svg.slice(svg.indexOf('<g class="series"'))
  return elements(drawn, 'circle').map(a => ({ x: Number(a.cx), y: Number(a.cy) }))
}

function texts(svg: string, group: string): string[] {
  const start = svg.indexOf(`<g class="${group}"`)
  const body = svg.slice(start, svg.indexOf('</g>', start))
  return [...body.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map(m => m[1]!)
}

const sizes: ChartOptions = {
  title: 'GET throughput by value size',
  xLabel: 'keys',
  yLabel: 'requests per second',
  xScale: 'log',
  xFormat: formatCount,
  series: [
    { name: 'kvarc', points: [{ x: 1e5, y: 9000 }, { x: 1e6, y: 8200 }, { x: 1e7, y: 7100 }] },
    { name: 'baseline', points: [{ x: 1e5, y: 10_500 }, { x: 1e6, y: 10_100 }, { x: 1e7, y: 9800 }], dashed: true },
  ],
}

describe('svg line chart', () => {
  it('is a well-formed standalone SVG sized for a markdown page', () => {
    const svg = lineChart(sizes)
    expect(() => checkXml(svg)).not.toThrow()
    const root = attributes(svg.slice(0, svg.indexOf('>')))
    expect(root).toMatchObject({ xmlns: 'http://www.w3.org/2000/svg', width: '640', height: '360', viewBox: '0 0 640 360', 'font-family': 'sans-serif' })
    expect(svg).toContain('<rect width="640" height="360" fill="#fff"/>')
    // The checker itself rejects what it should.
    for (const bad of ['<svg><g></svg>', '<svg a="1" a="2"/>', '<svg>a & b</svg>', '<svg/><svg/>', '<svg x=1/>']) expect(() => checkXml(bad)).toThrow()
  })

  it('puts the last x on the right edge and 10⁶ halfway between 10⁵ and 10⁷ on a log axis', () => {
    const svg = lineChart(sizes)
    const plot = plotArea(svg)
    const [first, middle, last] = markers(svg)
    expect(first!.x).toBe(plot.left)
    expect(last!.x).toBe(plot.right)
    expect(middle!.x).toBeCloseTo((plot.left + plot.right) / 2, 0)
    expect(texts(svg, 'x-ticks')).toEqual(['10⁵', '10⁶', '10⁷'])
  })

  it('places points on linear axes, y from 0 on nice ticks', () => {
    const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 'a', points: [{ x: 0, y: 0 }, { x: 50, y: 45 }, { x: 100, y: 90 }] }] })
    const plot = plotArea(svg)
    expect(texts(svg, 'y-ticks')).toEqual(['0', '20', '40', '60', '80', '100'])
    const [origin, middle, last] = markers(svg)
    expect(origin).toEqual({ x: plot.left, y: plot.bottom })
    expect(middle!.x).toBeCloseTo((plot.left + plot.right) / 2, 0)
    expect(last!.x).toBe(plot.right)
    expect(last!.y).toBeCloseTo(plot.bottom - 0.9 * (plot.bottom - plot.top), 0)
    expect(svg).toMatch(/<polyline points="[\d.]+,[\d.]+ [\d.]+,[\d.]+ [\d.]+,[\d.]+"/)
  })

  it('uses explicit x ticks with their format, and the default 10ⁿ labels on a log y axis', () => {
    const svg = lineChart({
      title: 't', xLabel: 'value size', yLabel: 'p99 ms', xScale: 'log', yScale: 'log', xTicks: [100, 10_240, 1_048_576], xFormat: formatBytes,
      series: [{ name: 'a', points: [{ x: 100, y: 0.5 }, { x: 10_240, y: 3 }, { x: 1_048_576, y: 40 }] }],
    })
    expect(texts(svg, 'x-ticks')).toEqual(['100 B', '10 KiB', '1 MiB'])
    expect(texts(svg, 'y-ticks')).toEqual(['10⁻¹', '10⁰', '10¹', '10²'])
  })

  it('escapes all text', () => {
    const svg = lineChart({ ...sizes, title: 'a <&> "b"', xLabel: "it's", series: [{ name: '<script>', points: [{ x: 1e5, y: 1 }] }] })
    expect(() => checkXml(svg)).not.toThrow()
    expect(svg).toContain('<title>a &lt;&amp;&gt; &quot;b&quot;</title>')
    expect(svg).toContain('it&apos;s')
    expect(svg).toContain('&lt;script&gt;')
    expect(svg).not.toContain('<script')
  })

  it('skips unusable points, keeps an empty series in the legend and a single point visible', () => {
    const svg = lineChart({
      ...sizes,
      series: [
        { name: 'one', points: [{ x: 1e6, y: 5 }, { x: Number.NaN, y: 1 }, { x: 0, y: 1 }, { x: -1e5, y: 2 }, { x: 1e5, y: Infinity }] },
        { name: 'none', points: [{ x: 0, y: 1 }] },
      ],
    })
    expect(() => checkXml(svg)).not.toThrow()
    expect(texts(svg, 'legend')).toEqual(['one', 'none (no data)'])
    expect(markers(svg)).toHaveLength(1)
    expect(svg).not.toContain('<polyline')
    expect(svg).not.toMatch(/NaN|Infinity/)
  })

  it('says "no data" instead of failing when nothing is drawable', () => {
    for (const series of [[], [{ name: 'a', points: [] }], [{ name: 'a', points: [{ x: 1, y: -1 }] }]]) {
      const svg = lineChart({ ...sizes, yScale: 'log', series })
      expect(() => checkXml(svg)).not.toThrow()
      expect(svg).toContain('>no data</text>')
    }
  })

  it('gives the series distinct colours and dashes the dashed one', () => {
    const svg = lineChart(sizes)
    const lines = elements(svg, 'polyline')
    expect(new Set(lines.map(l => l.stroke)).size).toBe(2)
    expect(lines.map(l => l['stroke-dasharray'])).toEqual([undefined, '6 4'])
  })

  it('is deterministic, with coordinates to 0.1, and leaves its input alone', () => {
    const options = { ...sizes, series: sizes.series.map(s => ({ ...s, points: [...s.points].reverse() })) }
    const before = JSON.stringify(options)
    const svg = lineChart(options)
    expect(lineChart(JSON.parse(before) as ChartOptions)).toBe(lineChart(JSON.parse(before) as ChartOptions))
    expect(lineChart(options)).toBe(svg)
    expect(JSON.stringify(options)).toBe(before)
    for (const attrs of [...elements(svg, 'circle'), ...elements(svg, 'line')]) {
      for (const key of ['cx', 'cy', 'x1', 'x2', 'y1', 'y2']) if (key in attrs) expect(attrs[key]).toMatch(/^-?\d+(\.\d)?$/)
    }
    // Points given in any order are drawn from left to right.
    const xs = markers(svg).slice(0, 3).map(m => m.x)
    expect(xs).toEqual([...xs].sort((a, b) => a - b))
  })

  it('formats bytes and counts', () => {
    expect([100, 10_240, 1_048_576, 1536, 1_048_575, 5 * 2 ** 30].map(formatBytes)).toEqual(['100 B', '10 KiB', '1 MiB', '1.5 KiB', '1 MiB', '5 GiB'])
    expect([1e5, 1e6, 1e7, 1_234_567, 1, 250].map(formatCount)).toEqual(['10⁵', '10⁶', '10⁷', '1,234,567', '1', '250'])
  })
})
