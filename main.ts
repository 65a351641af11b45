/**
 * resec: argv → config → agent. Nothing else lives here.
 */
import { runCli } from "./lib/cli.ts";
import { runAgent } from "./lib/agent.ts";

if (import.meta.main) {
  const code = await runCli(Deno.args, {
    getEnv: (name) => Deno.env.get(name),
    readTextFile: (path) => Deno.readTextFileSync(path),
    stdout: (line) => console.log(line),
    stderr: (line) => console.error(line),
    runAgent,
  });
  Deno.exit(code);
}
