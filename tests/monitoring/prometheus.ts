/**
 * A real Prometheus server (Debian's `prometheus` package) for end-to-end tests: it scrapes the
 * agents of a test cluster and evaluates alert rules, on 127.0.0.1 and a free port, with its storage
 * in the run's scratch directory. Dispose it (`await using`) to stop it.
 */
import { prometheusBinary } from "./monitoring_files.ts";
import { freePort, startOnFreePorts } from "../support/ports.ts";
import { type ServerLaunch, TestServer } from "../support/server.ts";
import { makeServerDir } from "../support/tmp.ts";

export interface PrometheusOptions {
  /** host:port of each agent's HTTP_ADDR. */
  targets: readonly string[];
  /** The text of the rules file to load. */
  rules: string;
  /** Scrape and rule evaluation interval (default "1s"). */
  interval?: string;
  /** The scrape job's name (default "resec"). */
  job?: string;
}

/** An alert as /api/v1/alerts reports it (pending or firing). */
export interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

/** Prometheus on `TestServer`'s lifecycle: launched, waited for until ready, stopped on dispose. */
export class PrometheusServer extends TestServer {
  readonly port: number;
  readonly dir: string;

  private constructor(readonly options: PrometheusOptions) {
    super();
    this.port = freePort();
    this.dir = makeServerDir("prometheus");
    const interval = options.interval ?? "1s";
    Deno.writeTextFileSync(`${this.dir}/resec.rules.yml`, options.rules);
    // JSON is YAML: no YAML writer needed.
    Deno.writeTextFileSync(
      `${this.dir}/prometheus.yml`,
      JSON.stringify(
        {
          global: {
            scrape_interval: interval,
            scrape_timeout: interval,
            evaluation_interval: interval,
          },
          rule_files: [`${this.dir}/resec.rules.yml`],
          scrape_configs: [{
            job_name: options.job ?? "resec",
            static_configs: [{ targets: options.targets }],
          }],
        },
        null,
        2,
      ),
    );
  }

  /** Starts Prometheus and waits until it is ready (its rules loaded). */
  static async start(options: PrometheusOptions): Promise<PrometheusServer> {
    return await startOnFreePorts(
      () => new PrometheusServer(options),
      (server) => server.launch(),
    );
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Everything Prometheus logged so far. */
  log(): string {
    return this.process?.readLog() ?? "";
  }

  /** The alerts that are pending or firing now. */
  async alerts(): Promise<ActiveAlert[]> {
    const response = await fetch(`${this.url}/api/v1/alerts`, {
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`GET /api/v1/alerts answered ${response.status}`);
    }
    const body = await response.json() as { data: { alerts: ActiveAlert[] } };
    return body.data.alerts;
  }

  /** The samples of an instant query, as label sets with their values. */
  async query(promql: string): Promise<{ metric: Record<string, string>; value: string }[]> {
    const response = await fetch(
      `${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`,
      { signal: AbortSignal.timeout(5_000) },
    );
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`GET /api/v1/query answered ${response.status}`);
    }
    const body = await response.json() as {
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    return body.data.result.map((sample) => ({ metric: sample.metric, value: sample.value[1] }));
  }

  protected launchPlan(): ServerLaunch {
    return {
      name: "prometheus",
      command: prometheusBinary(),
      args: [
        `--config.file=${this.dir}/prometheus.yml`,
        `--storage.tsdb.path=${this.dir}/data`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        "--log.level=warn",
      ],
      logPath: `${this.dir}/prometheus.log`,
      cwd: this.dir,
      isReady: async () => {
        const response = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
        await response.body?.cancel();
        return response.ok;
      },
      timeoutMs: 30_000,
      intervalMs: 100,
      readyMessage: `prometheus on ${this.url} to be ready`,
    };
  }
}
