// Builds dist/{index.html,playground.js,playground.css}, and brotli and gzip
// copies of the script and stylesheet (the server sends them as they are, so no
// request pays for compressing 1.6 MB): run with `npm run build`.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
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
  // Whatever a stylesheet references must be inlined: dist/ holds the page, one
  // script and one stylesheet (and their compressed copies) only.
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

for (const name of ['playground.js', 'playground.css']) {
  const bytes = await readFile(join(dist, name));
  const br = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
  await writeFile(join(dist, `${name}.br`), br);
  // mtime 0 in the header: the same input gives the same bytes.
  await writeFile(join(dist, `${name}.gz`), gzipSync(bytes, { level: 9 }));
}

const files = (await readdir(dist)).sort();
const expected = [
  'index.html',
  'playground.css',
  'playground.css.br',
  'playground.css.gz',
  'playground.js',
  'playground.js.br',
  'playground.js.gz',
];
if (files.join() !== expected.join()) {
  console.error(`dist/ should hold exactly ${expected.join(', ')}; it holds ${files.join(', ')}`);
  process.exit(1);
}
