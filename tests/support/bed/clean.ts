/**
 * Removes leftover beds: the namespaces (and the processes in them) of every bed whose owner process
 * is dead. `--all` removes live beds too. Run by scripts/bed-clean.sh.
 */
import { cleanStaleBeds } from "./registry.ts";

if (import.meta.main) {
  const all = Deno.args.includes("--all");
  const unknown = Deno.args.filter((arg) => arg !== "--all");
  if (unknown.length > 0) {
    console.error(`Unknown argument "${unknown[0]}": expected nothing or --all`);
    Deno.exit(2);
  }
  const removed = await cleanStaleBeds({ all });
  console.log(
    removed.length === 0
      ? "No leftover bed"
      : `Removed bed${removed.length > 1 ? "s" : ""} ${removed.join(", ")}`,
  );
}
