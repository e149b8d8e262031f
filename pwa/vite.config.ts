import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import react from '@vitejs/plugin-react'
import { defineConfig, type Plugin } from 'vite'

const sdk = fileURLToPath(new URL('../client-sdk/js/src/index.js', import.meta.url))

/**
 * Writes `sw.js` from `src/sw-template.js` with the list of every emitted file (the app shell),
 * so the service worker precaches exactly this build and the app starts with no network.
 */
function serviceWorker (): Plugin {
  return {
    name: 'syncd-service-worker',
    apply: 'build',
    generateBundle (_options, bundle) {
      const publicDir = fileURLToPath(new URL('./public', import.meta.url))
      const files = [...Object.keys(bundle), ...readdirSync(publicDir)].filter((name) => !name.endsWith('.map'))
      const shell = ['./', ...files.map((name) => `./${name}`)].sort()
      const version = createHash('sha256').update(shell.join('\n')).update(
        Object.values(bundle).map((chunk) => ('code' in chunk ? chunk.code : String(chunk.source))).join('')
      ).digest('hex').slice(0, 16)
      const template = readFileSync(fileURLToPath(new URL('./src/sw-template.js', import.meta.url)), 'utf8')
      this.emitFile({
        type: 'asset',
        fileName: 'sw.js',
        source: template
          .replace('__SHELL__', JSON.stringify(shell.filter((f) => f !== './sw.js'), null, 2))
          .replace('__VERSION__', JSON.stringify(version))
      })
    }
  }
}

export default defineConfig({
  base: './',
  plugins: [react(), serviceWorker()],
  resolve: {
    alias: { 'syncd-client': sdk },
    // The SDK lives outside this package: its imports resolve to this package's copies, so
    // the app holds one yjs (two copies break `instanceof` checks).
    dedupe: ['yjs', 'lib0', 'y-protocols', 'y-indexeddb']
  },
  server: {
    fs: { allow: ['..'] },
    proxy: {
      '/v1': { target: 'http://127.0.0.1:8787', ws: true }
    }
  },
  build: {
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 800
  }
})
