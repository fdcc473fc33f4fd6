// Builds dist/{index.html,playground.js,playground.css}: run with `npm run build`.
import { build } from 'esbuild';
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, 'dist');

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

await build({
  absWorkingDir: root,
  entryPoints: { playground: 'src/index.jsx' },
  outdir: dist,
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  // Whatever a stylesheet references must be inlined: dist/ holds three files only.
  loader: {
    '.woff': 'dataurl',
    '.woff2': 'dataurl',
    '.ttf': 'dataurl',
    '.eot': 'dataurl',
    '.svg': 'dataurl',
    '.png': 'dataurl',
    '.gif': 'dataurl',
  },
  legalComments: 'eof',
  sourcemap: false,
  logLevel: 'info',
});

await copyFile(join(root, 'src/index.html'), join(dist, 'index.html'));

const files = (await readdir(dist)).sort();
const expected = ['index.html', 'playground.css', 'playground.js'];
if (files.join() !== expected.join()) {
  console.error(`dist/ should hold exactly ${expected.join(', ')}; it holds ${files.join(', ')}`);
  process.exit(1);
}
