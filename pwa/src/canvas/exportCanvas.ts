// Exporting the canvas: the SVG the page draws (the world group, without the viewport
// transform), framed around its content, then rasterised (PNG) or converted to vector PDF.
import { type Box, bounds, unionBounds } from './geometry'
import type { CanvasElement } from 'syncd-client'

const NS = 'http://www.w3.org/2000/svg'
const MARGIN = 40

/** A standalone SVG of `world`'s elements on `background`, and its size in user units. */
export function exportSvg (world: SVGGElement, elements: CanvasElement[], background: string): { svg: SVGSVGElement, box: Box } {
  const content = unionBounds(elements.map(bounds)) ?? { x: 0, y: 0, w: 400, h: 300 }
  const box = { x: content.x - MARGIN, y: content.y - MARGIN, w: content.w + 2 * MARGIN, h: content.h + 2 * MARGIN }
  const svg = document.createElementNS(NS, 'svg')
  svg.setAttribute('xmlns', NS)
  svg.setAttribute('viewBox', `${box.x} ${box.y} ${box.w} ${box.h}`)
  svg.setAttribute('width', String(box.w))
  svg.setAttribute('height', String(box.h))
  const bg = document.createElementNS(NS, 'rect')
  Object.entries({ x: box.x, y: box.y, width: box.w, height: box.h, fill: background })
    .forEach(([k, v]) => bg.setAttribute(k, String(v)))
  svg.append(bg)
  const clone = world.cloneNode(true) as SVGGElement
  clone.removeAttribute('transform')
  // Invisible hit areas (for the pointer only): a PDF converter may not know "transparent".
  clone.querySelectorAll('[fill="transparent"], [stroke="transparent"]').forEach((node) => node.remove())
  // The element being edited is drawn faded under its editor; the export shows it whole.
  clone.querySelectorAll('[data-id][opacity]').forEach((node) => node.removeAttribute('opacity'))
  svg.append(clone)
  return { svg, box }
}

/** `svg` (of size `box`) drawn by the browser into a canvas `scale` times its size. */
async function rasterise (svg: SVGSVGElement, box: { w: number, h: number }, scale: number): Promise<HTMLCanvasElement> {
  const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(svg)], { type: 'image/svg+xml' }))
  try {
    const img = new Image()
    await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; img.src = url })
    const cnv = document.createElement('canvas')
    cnv.width = Math.ceil(box.w * scale)
    cnv.height = Math.ceil(box.h * scale)
    const ctx = cnv.getContext('2d')!
    ctx.scale(scale, scale)
    ctx.drawImage(img, 0, 0)
    return cnv
  } finally {
    URL.revokeObjectURL(url)
  }
}

/** The canvas as a PNG (at most 4096 px on its long side, 2x when it fits). */
export async function exportPng (svg: SVGSVGElement, box: Box): Promise<Blob | null> {
  const cnv = await rasterise(svg, box, Math.min(2, 4096 / Math.max(box.w, box.h)))
  return await new Promise<Blob | null>((resolve) => cnv.toBlob(resolve, 'image/png'))
}

// What the PDF standard fonts can write (WinAnsiEncoding: Latin-1 and a few more).
const WIN_ANSI = /^[\t\n\r\x20-\x7e\xa0-\xff€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ]*$/

/**
 * Text boxes in scripts the standard fonts cannot write (Hebrew, Arabic, Cyrillic, emoji...)
 * become pictures of themselves, drawn by the browser with the system's fonts at 3x: the PDF
 * shows them right instead of as wrong glyphs. Everything else stays vector, its text text.
 * (Embedding a Unicode font would keep them text, at a megabyte in the app; not done yet.)
 */
async function pictureUnwritableText (svg: SVGSVGElement): Promise<void> {
  const boxes = [...svg.querySelectorAll<SVGGElement>('[data-kind="text"]')].filter((g) => !WIN_ANSI.test(g.textContent ?? ''))
  for (const g of boxes) {
    const b = g.getBBox()
    const area = { x: b.x - 4, y: b.y - 4, w: b.width + 8, h: b.height + 8 }
    const piece = document.createElementNS(NS, 'svg')
    piece.setAttribute('xmlns', NS)
    piece.setAttribute('viewBox', `${area.x} ${area.y} ${area.w} ${area.h}`)
    piece.setAttribute('width', String(area.w))
    piece.setAttribute('height', String(area.h))
    for (const child of [...g.childNodes]) piece.append(child.cloneNode(true))
    const png = (await rasterise(piece, area, 3)).toDataURL('image/png')
    const image = document.createElementNS(NS, 'image')
    Object.entries({ x: area.x, y: area.y, width: area.w, height: area.h, href: png })
      .forEach(([k, v]) => image.setAttribute(k, String(v)))
    g.replaceChildren(image)
  }
}

/**
 * The canvas as a one-page vector PDF (jsPDF + svg2pdf.js, loaded on first use so the app's
 * first load does not carry them): shapes, strokes and connectors as paths, text as PDF text
 * in the standard Helvetica (so it can be searched and copied). One SVG unit is one point.
 */
export async function exportPdf (svg: SVGSVGElement, box: Box, title: string): Promise<Blob> {
  const [{ jsPDF }, { svg2pdf }] = await Promise.all([import('jspdf'), import('svg2pdf.js')])
  const pdf = new jsPDF({ orientation: box.w > box.h ? 'landscape' : 'portrait', unit: 'pt', format: [box.w, box.h], compress: true })
  pdf.setProperties({ title: title || 'Canvas', creator: 'syncd' })
  // The PDF's standard fonts come in normal and bold only: an in-between weight (the cards'
  // 650) would fall back to Times.
  svg.querySelectorAll('[font-weight]').forEach((node) => {
    node.setAttribute('font-weight', Number(node.getAttribute('font-weight')) >= 600 ? 'bold' : 'normal')
  })
  // svg2pdf reads computed geometry and measures text through the DOM: the SVG must be in it.
  svg.style.position = 'fixed'
  svg.style.left = '-100000px'
  svg.style.top = '0'
  document.body.append(svg)
  try {
    await pictureUnwritableText(svg)
    await svg2pdf(svg, pdf, { x: 0, y: 0, width: box.w, height: box.h })
  } finally {
    svg.remove()
  }
  return pdf.output('blob')
}
