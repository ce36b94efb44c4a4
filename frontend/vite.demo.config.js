import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

// Demo page build: dist-demo/ is self-contained (relative asset paths), so any static
// server (or Flask) can serve it under any path. `npm run dev` serves it with live reload.
export default defineConfig({
  root: fileURLToPath(new URL('./demo', import.meta.url)),
  base: './',
  plugins: [react()],
  // the API client is the plain page's module (src/restock/web/static/client.js), outside
  // this package: the dev server may read it
  server: { fs: { allow: [fileURLToPath(new URL('.', import.meta.url)), fileURLToPath(new URL('../src/restock/web/static', import.meta.url))] } },
  build: {
    outDir: fileURLToPath(new URL('./dist-demo', import.meta.url)),
    chunkSizeWarningLimit: 1000, // one bundle with react + recharts, ~200 kB gzipped
    emptyOutDir: true,
  },
});
