/**
 * End to end, the alert rules of deploy/prometheus against a real cluster: a real Prometheus scrapes
 * the agents' /metrics and evaluates the rules, real faults make the alerts fire, and they resolve
 * once the cluster has recovered.
 */
import assert from "node:assert/strict";
import {
  Cluster,
  type ClusterNode,
  type ClusterOptions,
  freePort,
  waitFor,
} from "../support/mod.ts";
import { RULES_PATH, withForDurations } from "./monitoring_files.ts";
import { type ActiveAlert, PrometheusServer } from "./prometheus.ts";

/** Prometheus scrapes the agents and evaluates the rules this often. */
const INTERVAL = "1s";
/**
 * The `for:` of every rule in the copy the tests load, instead of the minutes an operator needs:
 * long enough to span several scrapes, short enough that a test waits seconds.
 */
const TEST_FOR = "3s";
/** How long an alert may take to fire, or to resolve, on a busy machine. */
const ALERT_TIMEOUT_MS = 90_000;

/** deploy/prometheus/resec.rules.yml with every `for:` shortened to TEST_FOR. */
function rulesForTests(): string {
  const original = Deno.readTextFileSync(RULES_PATH);
  const { text, count } = withForDurations(original, TEST_FOR);
  const alerts = original.match(/^\s*- alert:/gm)?.length ?? 0;
  assert.equal(count, alerts, "every alert has a for: that the test shortened");
  return `# A copy of resec.rules.yml for tests/monitoring/alerts_test.ts: every for: is ${TEST_FOR}.\n${text}`;
}

function httpAddress(node: ClusterNode): string {
  return node.env.HTTP_ADDR!;
}

/** A cluster whose agents serve HTTP_ADDR, and a Prometheus that scrapes them with the test rules. */
async function startWatched(
  options: ClusterOptions = {},
): Promise<{ cluster: Cluster; prometheus: PrometheusServer }> {
  const cluster = await Cluster.start({
    ...options,
    nodeEnv: () => ({ HTTP_ADDR: `127.0.0.1:${freePort()}` }),
  });
  try {
    const prometheus = await PrometheusServer.start({
      targets: cluster.nodes.map(httpAddress),
      rules: rulesForTests(),
      interval: INTERVAL,
    });
    return { cluster, prometheus };
  } catch (error) {
    await cluster[Symbol.asyncDispose]();
    throw error;
  }
}

/** Waits until Prometheus has scraped every agent and sees exactly one of them acting as master. */
async function waitForScrapes(prometheus: PrometheusServer, cluster: Cluster): Promise<void> {
  await waitFor(async () => {
    const scraped = await prometheus.query("resec_build_info");
    const masters = await prometheus.query('resec_decision{decision="master"} == 1');
    return scraped.length === cluster.nodes.length && masters.length === 1;
  }, {
    timeoutMs: ALERT_TIMEOUT_MS,
    intervalMs: 500,
    message: "Prometheus to scrape every agent and see one master",
  });
}

/** Matches an alert by name and, optionally, by the instance it names. */
interface AlertMatch {
  alertname: string;
  instance?: string;
}

function matches(alert: ActiveAlert, match: AlertMatch): boolean {
  return alert.labels.alertname === match.alertname &&
    (match.instance === undefined || alert.labels.instance === match.instance);
}

function describe(match: AlertMatch): string {
  return match.instance ? `${match.alertname} for ${match.instance}` : match.alertname;
}

/** Waits until Prometheus reports every alert in `expected` as firing; returns them. */
async function waitForFiring(
  prometheus: PrometheusServer,
  expected: AlertMatch[],
): Promise<ActiveAlert[]> {
  return await waitFor(async () => {
    const alerts = await prometheus.alerts();
    const firing = expected.map((match) =>
      alerts.find((alert) => alert.state === "firing" && matches(alert, match))
    );
    return firing.every((alert) => alert !== undefined) ? firing as ActiveAlert[] : false;
  }, {
    timeoutMs: ALERT_TIMEOUT_MS,
    intervalMs: 500,
    message: `Prometheus to fire ${expected.map(describe).join(", ")}`,
  });
}

/** Waits until none of the alerts in `gone` is pending or firing. */
async function waitForResolved(prometheus: PrometheusServer, gone: AlertMatch[]): Promise<void> {
  await waitFor(async () => {
    const alerts = await prometheus.alerts();
    return !alerts.some((alert) => gone.some((match) => matches(alert, match)));
  }, {
    timeoutMs: ALERT_TIMEOUT_MS,
    intervalMs: 500,
    message: `Prometheus to resolve ${gone.map(describe).join(", ")}`,
  });
}

/** What a failing test prints: the alerts, each agent's decision as Prometheus saw it, the logs. */
async function diagnose(cluster: Cluster, prometheus: PrometheusServer): Promise<void> {
  try {
    console.error("alerts:", JSON.stringify(await prometheus.alerts(), null, 2));
    console.error("decisions:", JSON.stringify(await prometheus.query("resec_decision == 1")));
  } catch (error) {
    console.error("Prometheus did not answer:", error);
  }
  console.error(`--- prometheus\n${prometheus.log().slice(-3000)}`);
  console.error(cluster.logs());
}

Deno.test("Prometheus fires ResecNoMaster when the master's Redis dies and no agent can take over, and resolves it after a failover", async () => {
  const { cluster, prometheus } = await startWatched();
  await using _cluster = cluster;
  await using _prometheus = prometheus;
  try {
    const master = await cluster.waitForConvergence();
    const others = cluster.nodes.filter((node) => node !== master);
    // The baseline: the rules see the converged cluster and raise nothing about it.
    await waitForScrapes(prometheus, cluster);
    await waitForResolved(prometheus, [{ alertname: "ResecNoMaster" }]);

    // The replicas' agents stop first, so nobody can take over when the master's Redis dies.
    for (const node of others) await node.agent.stop();
    await master.redis.kill();
    const faultAt = Date.now();
    const [noMaster] = await waitForFiring(prometheus, [
      { alertname: "ResecNoMaster" },
      ...others.map((node) => ({ alertname: "ResecAgentDown", instance: httpAddress(node) })),
      { alertname: "ResecRedisUnhealthy", instance: httpAddress(master) },
    ]);
    const firedAfter = Date.now() - faultAt;
    assert.equal(noMaster!.labels.severity, "critical");
    assert.equal(noMaster!.labels.job, "resec");
    assert.match(
      noMaster!.annotations.description!,
      new RegExp(`${httpAddress(master)} redis_unhealthy`),
      "the description lists the agents' decisions",
    );

    // Recovery: the agents come back and one of the replicas takes over.
    for (const node of others) cluster.startAgent(node);
    const newMaster = await cluster.waitForMaster(60_000, master);
    assert.notEqual(newMaster, master);
    const recoveredAt = Date.now();
    await waitForResolved(prometheus, [
      { alertname: "ResecNoMaster" },
      ...others.map((node) => ({ alertname: "ResecAgentDown", instance: httpAddress(node) })),
    ]);
    console.log(
      `no master: alerts fired ${firedAfter} ms after the fault (for: ${TEST_FOR}), resolved ` +
        `${Date.now() - recoveredAt} ms after the new master registered`,
    );
  } catch (error) {
    await diagnose(cluster, prometheus);
    throw error;
  }
});

Deno.test("Prometheus fires ResecFencedMaster while a Consul outage keeps the master's writes paused, and resolves it once Consul is back", async () => {
  // Every agent reaches Consul through its own proxy: cutting them all is a Consul outage as the
  // agents see it. (Cutting the master's alone fences it for seconds only: the new master points
  // it at itself at once, far quicker than any for: an operator would choose.)
  const { cluster, prometheus } = await startWatched({ consulThroughProxy: true });
  await using _cluster = cluster;
  await using _prometheus = prometheus;
  try {
    const master = await cluster.waitForConvergence();
    await waitForScrapes(prometheus, cluster);
    await waitForResolved(prometheus, [
      { alertname: "ResecFencedMaster" },
      { alertname: "ResecConsulUnreachable" },
    ]);

    for (const node of cluster.nodes) node.proxy!.cut();
    const cutAt = Date.now();
    await master.agent.waitForLog(/fencing_unconfirmed_lock/, 30_000);
    const [fenced] = await waitForFiring(prometheus, [
      { alertname: "ResecFencedMaster", instance: httpAddress(master) },
      ...cluster.nodes.map((node) => ({
        alertname: "ResecConsulUnreachable",
        instance: httpAddress(node),
      })),
    ]);
    const firedAfter = Date.now() - cutAt;
    assert.equal(fenced!.labels.severity, "critical");
    assert.equal(fenced!.labels.role, "master");
    assert.match(fenced!.annotations.summary!, new RegExp(httpAddress(master)));
    const fencedNow = (await prometheus.alerts()).filter((alert) =>
      alert.labels.alertname === "ResecFencedMaster"
    );
    assert.deepEqual(
      fencedNow.map((alert) => alert.labels.instance),
      [httpAddress(master)],
      "only the master is a fenced master: the replicas' Redis were left as they were",
    );

    for (const node of cluster.nodes) node.proxy!.heal();
    await cluster.waitForConvergence(60_000);
    const recoveredAt = Date.now();
    await waitForResolved(prometheus, [
      { alertname: "ResecFencedMaster" },
      { alertname: "ResecConsulUnreachable" },
    ]);
    console.log(
      `Consul outage: alerts fired ${firedAfter} ms after the cut (for: ${TEST_FOR}), resolved ` +
        `${Date.now() - recoveredAt} ms after the cluster converged again`,
    );
  } catch (error) {
    await diagnose(cluster, prometheus);
    throw error;
  }
});
