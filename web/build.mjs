// Encore web UI build: web/src/ (ES modules and CSS) bundled and minified
// by esbuild into build/web/ at the top of the checkout:
//
//   build/web/index.html             web/index.html pointing at the assets
//   build/web/assets/app-<hash>.js   every module, one file
//   build/web/assets/app-<hash>.css  every stylesheet, one file
//
// The hashed names let nginx serve /assets/ as immutable (conf/nginx.conf)
// while index.html is revalidated on every load.
//
// usage: node web/build.mjs [--outdir DIR] [--dev]   (make web)
import * as esbuild from 'esbuild';
import { mkdir, readFile, rm, writeFile, rename, copyFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const dev = args.includes('--dev');
const at = args.indexOf('--outdir');
const outdir = at >= 0 ? path.resolve(args[at + 1])
                       : path.resolve(here, '..', 'build', 'web');

// a fresh directory beside the old one, swapped in at the end: a server
// reading build/web meanwhile never sees an index.html naming an asset
// that is not there yet
const next = outdir + '.next';
await rm(next, { recursive: true, force: true });
await mkdir(next, { recursive: true });

const result = await esbuild.build({
  absWorkingDir: here,
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  minify: !dev,
  sourcemap: dev ? 'inline' : false,
  // the bundled packages' licence notices, at the end of the file
  legalComments: 'eof',
  entryNames: 'assets/[name]-[hash]',
  assetNames: 'assets/[name]-[hash]',
  outdir: next,
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((f) =>
  '/' + path.relative(next, path.resolve(here, f)).split(path.sep).join('/'));
const js = outputs.find((f) => /^\/assets\/app-[A-Z0-9]+\.js$/.test(f));
const css = outputs.find((f) => /^\/assets\/app-[A-Z0-9]+\.css$/.test(f));
if (!js || !css) {
  throw new Error(`esbuild produced no app js/css: ${outputs.join(', ')}`);
}

let html = await readFile(path.join(here, 'index.html'), 'utf8');
const before = html;
html = html.replace('/assets/app.js', js).replace('/assets/app.css', css);
if (html === before || html.includes('/assets/app.')) {
  throw new Error('web/index.html must name /assets/app.js and /assets/app.css');
}
await writeFile(path.join(next, 'index.html'), html);
await copyFile(path.join(here, 'favicon.svg'), path.join(next, 'favicon.svg'));

// swap: the old tree goes, the new one takes its name
const old = outdir + '.old';
await rm(old, { recursive: true, force: true });
try {
  await rename(outdir, old);
} catch (e) {
  if (e.code !== 'ENOENT') throw e;
}
await rename(next, outdir);
await rm(old, { recursive: true, force: true });

const sizes = Object.entries(result.metafile.outputs)
  .map(([f, o]) => `${path.basename(f)} ${o.bytes} B`).join(', ');
console.log(`web: ${path.relative(process.cwd(), outdir) || '.'}: ${sizes}`);
