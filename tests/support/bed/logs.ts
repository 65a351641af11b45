/**
 * The bed's logs: one file per process in its machine's directory under the test run dir, appended to
 * across restarts with a header per launch, and their tails gathered for a failing test.
 */

/** Appends a header line before a process (re)starts, so restarts are easy to find in one file. */
export function startLog(path: string, label: string): void {
  Deno.writeTextFileSync(path, `----- ${new Date().toISOString()} ${label}\n`, {
    append: true,
    create: true,
  });
}

/** The last `tail` characters of every `*.log` file in `dir`, each under a heading. */
export function logTails(title: string, dir: string, tail: number): string {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((entry) =>
      entry.isFile && entry.name.endsWith(".log")
    )
      .map((entry) => entry.name).sort();
  } catch {
    return "";
  }
  return names.map((name) => {
    let text = "";
    try {
      text = Deno.readTextFileSync(`${dir}/${name}`);
    } catch { /* removed meanwhile */ }
    const cut = text.length > tail ? `…${text.slice(-tail)}` : text;
    return `===== ${title}: ${dir}/${name}\n${cut}`;
  }).join("\n");
}
