/** The program's version, printed by --version and reported in /state. */
export const VERSION = "0.1.0";

/** `resec 0.1.0 (deno 2.9.6, v8 …, typescript …)` */
export function versionLine(): string {
  return `resec ${VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8}, typescript ${Deno.version.typescript})`;
}
