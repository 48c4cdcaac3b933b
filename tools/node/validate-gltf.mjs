// Validate .glb/.gltf files with the Khronos glTF validator and print one JSON report on stdout:
// [{"file", "errors", "warnings", "infos", "messages": [{code, message, severity, pointer}]}].
// Usage: node tools/node/validate-gltf.mjs FILE... (or a directory: every .glb under it).
import fs from "node:fs";
import path from "node:path";
import validator from "gltf-validator";

function collect(target, out) {
  const stat = fs.statSync(target);
  if (stat.isDirectory()) {
    for (const name of fs.readdirSync(target).sort()) collect(path.join(target, name), out);
  } else if (target.endsWith(".glb") || target.endsWith(".gltf")) {
    out.push(target);
  }
}

const files = [];
for (const arg of process.argv.slice(2)) collect(arg, files);
const reports = [];
for (const file of files) {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const report = await validator.validateBytes(bytes, {
    uri: file,
    maxIssues: 100,
    externalResourceFunction: (uri) =>
      new Promise((resolve, reject) => {
        fs.readFile(path.resolve(path.dirname(file), decodeURIComponent(uri)), (err, data) =>
          err ? reject(err.toString()) : resolve(new Uint8Array(data)));
      }),
  });
  reports.push({
    file,
    errors: report.issues.numErrors,
    warnings: report.issues.numWarnings,
    infos: report.issues.numInfos,
    messages: report.issues.messages,
  });
}
process.stdout.write(JSON.stringify(reports) + "\n");
