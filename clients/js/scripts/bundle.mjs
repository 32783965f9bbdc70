// Browser bundles, built with esbuild:
//   dist/bookcast-client.min.js  the library alone (ESM, minified): its size is the one stated
//   ../../gateway/book_page.js    the /book page's script (the library and the page), which the
//                                 gateway serves; committed, so a gateway needs no Node.js
// `node scripts/bundle.mjs --check` builds both in memory and fails if the committed page
// script differs from what the sources give (CI runs it).
import { existsSync, readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const check = process.argv.includes("--check");
const common = {
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  legalComments: "none",
  write: false,
  logLevel: "warning",
};

const library = await build({ ...common, entryPoints: [join(here, "src/index.ts")], outfile: "bookcast-client.min.js" });
const pageEntry = join(here, "page/book_page.ts");
const page = !existsSync(pageEntry) ? null : await build({
  ...common,
  format: "iife",
  entryPoints: [pageEntry],
  outfile: "book_page.js",
  banner: { js: "/* bookcast /book page: built from clients/js/page/book_page.ts by clients/js/scripts/bundle.mjs; do not edit */" },
});

const size = (bytes) => `${(bytes.length / 1024).toFixed(1)} KiB min, ${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1)} KiB min+gzip`;
const lib = library.outputFiles[0].contents;
const pageJs = page?.outputFiles[0].contents;
const pageTarget = join(here, "../../gateway/book_page.js");
console.log(`library bundle: ${size(lib)}`);
if (pageJs !== undefined) console.log(`/book page script: ${size(pageJs)}`);

if (pageJs === undefined) {
  if (!check) {
    mkdirSync(join(here, "dist"), { recursive: true });
    writeFileSync(join(here, "dist/bookcast-client.min.js"), lib);
  }
} else if (check) {
  let committed;
  try {
    committed = readFileSync(pageTarget);
  } catch {
    committed = Buffer.alloc(0);
  }
  if (!committed.equals(Buffer.from(pageJs))) {
    console.error("gateway/book_page.js is not what clients/js builds: run `npm run build` in clients/js and commit it");
    process.exit(1);
  }
  console.log("gateway/book_page.js is up to date");
} else {
  mkdirSync(join(here, "dist"), { recursive: true });
  writeFileSync(join(here, "dist/bookcast-client.min.js"), lib);
  writeFileSync(pageTarget, pageJs);
}
