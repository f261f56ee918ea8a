// Validates an AsyncAPI document with the official parser (@asyncapi/parser, the one the AsyncAPI CLI and
// Studio use): reads the document from the file named by the first argument, prints its diagnostics as JSON
// ([{code, severity, message, path}], severity 0 error, 1 warning, 2 information, 3 hint).
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const text = await readFile(process.argv[2], "utf8");
const diagnostics = await new Parser().validate(text);
process.stdout.write(
  JSON.stringify(
    diagnostics.map((d) => ({ code: String(d.code), severity: d.severity, message: d.message, path: d.path })),
  ),
);
