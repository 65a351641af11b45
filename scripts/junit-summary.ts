/**
 * Reads Deno's JUnit report and prints the plain closing line CI understands:
 * `N passed, N failed` (with `, N skipped` when tests were ignored). Exits 1 when any test failed or
 * when no test ran at all.
 *
 * Usage: deno run --allow-read scripts/junit-summary.ts test-results/junit.xml
 */
const path = Deno.args[0];
if (!path) {
  console.error("Usage: junit-summary.ts <junit.xml>");
  Deno.exit(2);
}
const xml = await Deno.readTextFile(path);

let passed = 0;
let failed = 0;
let skipped = 0;
const failedNames: string[] = [];
// Each <testcase …/> or <testcase …>…</testcase>; nested test steps are reported as test cases too.
for (const match of xml.matchAll(/<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g)) {
  const attributes = match[1] ?? "";
  const body = match[3] ?? "";
  const name = /\bname="([^"]*)"/.exec(attributes)?.[1] ?? "?";
  if (/<(failure|error)\b/.test(body)) {
    failed++;
    failedNames.push(name);
  } else if (/<skipped\b/.test(body)) skipped++;
  else passed++;
}

for (const name of failedNames) console.log(`FAILED: ${name}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
Deno.exit(failed > 0 || passed === 0 ? 1 : 0);
