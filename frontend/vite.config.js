import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Library build: dist/restock-retrain.js (ES), .cjs, and restock-retrain.css.
// react and react-dom stay external (peer dependencies); recharts is bundled.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1000,
    lib: {
      entry: 'src/index.js',
      name: 'RestockRetrain',
      formats: ['es', 'cjs'],
      fileName: (format) => (format === 'es' ? 'restock-retrain.js' : 'restock-retrain.cjs'),
      cssFileName: 'restock-retrain',
    },
    rollupOptions: {
      external: [/^react(\/|$)/, /^react-dom(\/|$)/],
      output: { exports: 'named' },
    },
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./test/setup.js'],
    include: ['test/**/*.test.{js,jsx}'],
    restoreMocks: true,
    testTimeout: 10000,
  },
});
