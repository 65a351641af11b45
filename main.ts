/**
 * resec: argv → config → agent. Nothing else lives here.
 */
import { runCli } from "./lib/cli.ts";
import { runAgent } from "./lib/agent/process.ts";
import { pauseCluster, requestSwitchover, resumeCluster } from "./lib/operator.ts";
import { listClusterOnTerminal } from "./lib/list/command.ts";

if (import.meta.main) {
  const code = await runCli(Deno.args, {
    getEnv: (name) => Deno.env.get(name),
    readTextFile: (path) => Deno.readTextFileSync(path),
    stdout: (line) => console.log(line),
    stderr: (line) => console.error(line),
    runAgent,
    runCommand: (invocation, config, io) => {
      switch (invocation.command) {
        case "pause":
          return pauseCluster(config, invocation.reason, io);
        case "resume":
          return resumeCluster(config, io);
        case "switchover":
          return requestSwitchover(
            config,
            { to: invocation.to, timeoutMs: invocation.timeoutMs },
            io,
          );
        case "list":
          return listClusterOnTerminal(
            config,
            { json: invocation.json, watchMs: invocation.watchMs },
            io,
          );
      }
    },
  });
  Deno.exit(code);
}
