// Bundle the widgets' browser code (streamify_notebook/js/*.js) into the one ES module
// anywidget loads: streamify_notebook/widget.js, or the file named by the first argument.
// Minified like the upload page's bundle (the sources are the code to read); esbuild comes
// from web/'s pinned packages (web/package-lock.json).
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const { build } = createRequire(join(here, "..", "..", "web", "package.json"))("esbuild");
const out = process.argv[2] || join(here, "..", "widget.js");

await build({
  entryPoints: [join(here, "widget.js")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  charset: "utf8",
  minify: true,
  legalComments: "none",
  banner: { js: "// Built from streamify_notebook/js/ by scripts/build-widget.sh: edit those, not this." },
  outfile: out,
  logLevel: "warning",
});
console.log(`built ${out}`);
