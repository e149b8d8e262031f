// The ten starter templates: each seeds a new canvas/1 document (meta.template = its id) with
// elements made by the schema helpers, so a template is an ordinary, editable document.
import type { Canvas } from 'syncd-client'

import { DECK_ID, deckCard } from './deck'

export interface Template {
  id: string
  name: string
  description: string
  background: string
  seed: (canvas: Canvas) => void
}

const label = (c: Canvas, text: string, x: number, y: number, w = 220, color: string | null = '#1f2933') =>
  c.addText(text, x, y, { w, h: 40, color })
const card = (c: Canvas, id: string, x: number, y: number, rotation = 0) =>
  c.addCard(DECK_ID, id, x, y, { rotation, color: deckCard(id).color })
const box = (c: Canvas, x: number, y: number, w: number, h: number, color: string, shape = 'rect') =>
  c.addShape(shape, x, y, w, h, { color })

export const TEMPLATES: Template[] = [
  {
    id: 'blank', name: 'Blank', description: 'An empty canvas.', background: '#ffffff',
    seed: () => {}
  },
  {
    id: 'three-cards', name: 'Three-card reading', description: 'Past, present and future.', background: '#fdf6e3',
    seed: (c) => {
      label(c, 'Three-card reading', 40, -80, 360)
      ;['past', 'present', 'future'].forEach((id, i) => {
        box(c, 20 + i * 180, 0, 160, 220, '#f1e4c3')
        card(c, id, 40 + i * 180, 20)
      })
    }
  },
  {
    id: 'retro', name: 'Retrospective', description: 'Went well, to improve, actions.', background: '#f8f9fa',
    seed: (c) => {
      const cols = [['Went well', '#d8f3dc'], ['To improve', '#ffe5d9'], ['Actions', '#e0e7ff']]
      cols.forEach(([title, color], i) => {
        box(c, i * 260, 0, 240, 420, color)
        label(c, title, i * 260 + 16, 12, 200)
      })
    }
  },
  {
    id: 'mind-map', name: 'Mind map', description: 'One idea in the middle, branches around it.', background: '#ffffff',
    seed: (c) => {
      const center = box(c, 0, 0, 200, 110, '#ffd166', 'ellipse')
      label(c, 'Main idea', 40, 35, 140)
      const spots: [number, number][] = [[-300, -170], [300, -170], [-300, 200], [300, 200]]
      spots.forEach(([x, y], i) => {
        const branch = box(c, x, y, 160, 80, ['#8ecae6', '#b7e4c7', '#ffafcc', '#cdb4db'][i], 'ellipse')
        c.addConnector(center, branch, { color: '#6c757d' })
      })
    }
  },
  {
    id: 'kanban', name: 'Kanban', description: 'To do, doing, done.', background: '#f1f5f9',
    seed: (c) => {
      ;['To do', 'Doing', 'Done'].forEach((title, i) => {
        box(c, i * 240, 0, 220, 480, '#e2e8f0')
        label(c, title, i * 240 + 16, 12, 180)
      })
      box(c, 16, 64, 188, 90, '#fef08a')
      label(c, 'First task', 28, 90, 160)
    }
  },
  {
    id: 'check-in', name: 'Check-in', description: 'How is everyone feeling today?', background: '#fffaf0',
    seed: (c) => {
      label(c, 'How are you arriving today?', -40, -120, 420)
      ;['joy', 'rest', 'fear', 'hope', 'change'].forEach((id, i) => card(c, id, -100 + i * 110, 0, (i - 2) * 6))
    }
  },
  {
    id: 'timeline', name: 'Timeline', description: 'Milestones along a line.', background: '#ffffff',
    seed: (c) => {
      const points: string[] = []
      for (let i = 0; i < 5; i++) {
        points.push(box(c, i * 200, 0, 40, 40, '#3d5a80', 'ellipse'))
        label(c, `Step ${i + 1}`, i * 200 - 20, 56, 120)
      }
      for (let i = 1; i < points.length; i++) c.addConnector(points[i - 1], points[i], { color: '#3d5a80' })
    }
  },
  {
    id: 'swot', name: 'SWOT', description: 'Strengths, weaknesses, opportunities, threats.', background: '#ffffff',
    seed: (c) => {
      const quads: [string, string, number, number][] = [
        ['Strengths', '#d8f3dc', 0, 0], ['Weaknesses', '#ffe5d9', 320, 0],
        ['Opportunities', '#e0e7ff', 0, 260], ['Threats', '#fde2e4', 320, 260]
      ]
      for (const [title, color, x, y] of quads) {
        box(c, x, y, 300, 240, color)
        label(c, title, x + 16, y + 12, 260)
      }
    }
  },
  {
    id: 'journey', name: 'Journey map', description: 'Stages of an experience, linked.', background: '#fbfbf8',
    seed: (c) => {
      const stages = ['Discover', 'Try', 'Struggle', 'Learn', 'Share']
      let previous: string | null = null
      stages.forEach((stage, i) => {
        const id = box(c, i * 190, (i % 2) * 80, 160, 90, ['#ffadad', '#ffd6a5', '#fdffb6', '#caffbf', '#9bf6ff'][i])
        label(c, stage, i * 190 + 16, (i % 2) * 80 + 26, 130)
        if (previous) c.addConnector(previous, id, { color: '#495057' })
        previous = id
      })
    }
  },
  {
    id: 'brainstorm', name: 'Brainstorm', description: 'A question and room for ideas.', background: '#fffef5',
    seed: (c) => {
      box(c, 0, 0, 360, 120, '#1f3a5f')
      label(c, 'What could we try next?', 24, 40, 320, '#ffffff')
      const notes: [number, number, string][] = [[-260, 180, '#fef08a'], [60, 200, '#bbf7d0'], [380, 170, '#fbcfe8']]
      for (const [x, y, color] of notes) box(c, x, y, 200, 140, color)
      card(c, 'idea', 420, -40, 8)
    }
  }
]

export function templateById (id: string): Template {
  return TEMPLATES.find((t) => t.id === id) ?? TEMPLATES[0]
}
