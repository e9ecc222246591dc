// Parses an AsyncAPI document with the AsyncAPI parser, its $refs (the JSON Schema
// files) resolved; exits 1 on any error. Run by tests/contract_files.rs:
//   node tests/asyncapi_check.cjs <parser install dir> <document>
const { createRequire } = require('node:module');
const path = require('node:path');

const [installDir, document] = process.argv.slice(2);
const { Parser, fromFile } = createRequire(path.resolve(installDir) + '/')('@asyncapi/parser');

(async () => {
  const { document: parsed, diagnostics } = await fromFile(new Parser(), document).parse();
  const severities = ['error', 'warning', 'info', 'hint'];
  for (const d of diagnostics) {
    console.log(`${severities[d.severity]}: ${d.code}: ${d.message} at ${d.path.join('.')}`);
  }
  const errors = diagnostics.filter((d) => d.severity === 0);
  if (!parsed || errors.length > 0) {
    console.log(`${document}: ${errors.length} error(s)`);
    process.exit(1);
  }
  console.log(`${document}: valid AsyncAPI ${parsed.version()}`);
})().catch((e) => {
  console.log(`${document}: ${e.stack || e}`);
  process.exit(1);
});
