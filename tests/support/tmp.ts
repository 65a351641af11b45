/** Scratch directories for test servers, all below one run directory that scripts/test.sh sweeps. */

/**
 * The directory every test server of this run keeps its files in. scripts/test.sh sets
 * RESEC_TEST_TMP and, after the run, kills any process whose command line still names it.
 */
export function testRunDir(): string {
  const fromEnv = Deno.env.get("RESEC_TEST_TMP");
  if (fromEnv) {
    Deno.mkdirSync(fromEnv, { recursive: true });
    return fromEnv;
  }
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/resec-test`;
  Deno.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Makes a fresh directory for one server, named after it so logs are easy to find. */
export function makeServerDir(label: string): string {
  return Deno.makeTempDirSync({ dir: testRunDir(), prefix: `${label}-` });
}
