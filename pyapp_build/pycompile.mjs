// Runs pyapp_build/pycompile.py's compile_archive under Pyodide in Node: the browser's own CPython, so the
// bytecode is the browser's. Usage: node pycompile.mjs <pyodide dir> <pycompile.py> '<[[src, dest, prefix, sources], ...]>'
// The host's root is mounted at /host, so host paths work as /host/<path>.
import { dirname } from "node:path";
import { pathToFileURL } from "node:url";

const [pyodideDir, script, jobs] = process.argv.slice(2);
// Node prints an uncaught error with the line of minified source it came from; say only what failed.
process.on("uncaughtException", (err) => {
  process.stderr.write(`${err?.message ?? err}\n`);
  process.exit(1);
});
const { loadPyodide } = await import(pathToFileURL(`${pyodideDir}/pyodide.mjs`).href);
const pyodide = await loadPyodide({ indexURL: `${pyodideDir}/` });
pyodide.FS.mkdirTree("/host");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: "/" }, "/host");
pyodide.pyimport("sys").path.insert(0, `/host${dirname(script)}`);
const pycompile = pyodide.pyimport("pycompile");
for (const [source, dest, prefix, sources] of JSON.parse(jobs)) {
  const n = pycompile.compile_archive(`/host${source}`, `/host${dest}`, prefix, sources);
  console.log(`${source}: ${n} modules compiled`);
}
