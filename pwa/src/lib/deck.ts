// The built-in deck: image-free cards, each a word and a colour.
export interface DeckCard { id: string, word: string, color: string }

export const DECK_ID = 'words'

export const DECK: DeckCard[] = [
  { id: 'hope', word: 'Hope', color: '#f4d35e' },
  { id: 'fear', word: 'Fear', color: '#9d8189' },
  { id: 'joy', word: 'Joy', color: '#ffb4a2' },
  { id: 'change', word: 'Change', color: '#8ecae6' },
  { id: 'home', word: 'Home', color: '#b7e4c7' },
  { id: 'journey', word: 'Journey', color: '#cdb4db' },
  { id: 'friend', word: 'Friend', color: '#ffd6a5' },
  { id: 'rest', word: 'Rest', color: '#caf0f8' },
  { id: 'courage', word: 'Courage', color: '#f28482' },
  { id: 'loss', word: 'Loss', color: '#adb5bd' },
  { id: 'question', word: 'Question', color: '#a0c4ff' },
  { id: 'idea', word: 'Idea', color: '#fdffb6' },
  { id: 'past', word: 'Past', color: '#d4a373' },
  { id: 'present', word: 'Present', color: '#90be6d' },
  { id: 'future', word: 'Future', color: '#4cc9f0' },
  { id: 'growth', word: 'Growth', color: '#95d5b2' }
]

export function deckCard (cardId: string): DeckCard {
  return DECK.find((c) => c.id === cardId) ?? { id: cardId, word: cardId, color: '#e9ecef' }
}
