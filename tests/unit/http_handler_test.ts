import assert from "node:assert/strict";
import { CapturingLogger } from "../../lib/log.ts";
import { createHttpHandler, type HttpHandler, ROUTES } from "../../lib/http/handler.ts";
import type { NodeRole, NodeStatus, StatusSource } from "../../lib/http/status.ts";

const HEALTHY_MASTER: NodeStatus = {
  role: "master",
  holdsLock: true,
  redisHealthy: true,
  agentHealthy: true,
  linkUp: false,
  lagBytes: undefined,
  paused: false,
};

const HEALTHY_REPLICA: NodeStatus = {
  role: "replica",
  holdsLock: false,
  redisHealthy: true,
  agentHealthy: true,
  linkUp: true,
  lagBytes: 0,
  paused: false,
};

function handlerFor(
  status: NodeStatus,
  options: { state?: unknown; metrics?: string; logger?: CapturingLogger } = {},
): HttpHandler {
  const source: StatusSource = { status: () => status, state: () => options.state ?? {} };
  return createHttpHandler({
    status: source,
    metrics: { render: () => options.metrics ?? "" },
    logger: options.logger,
  });
}

function get(handler: HttpHandler, target: string, method = "GET"): Response {
  return handler(new Request(`http://resec.test${target}`, { method }));
}

/** Every NodeStatus that differs in a way an endpoint could look at. */
function allStatuses(): NodeStatus[] {
  const out: NodeStatus[] = [];
  const bools = [false, true];
  for (const role of ["master", "replica", "unknown"] as NodeRole[]) {
    for (const holdsLock of bools) {
      for (const redisHealthy of bools) {
        for (const agentHealthy of bools) {
          for (const linkUp of bools) {
            for (const paused of bools) {
              for (const lagBytes of [undefined, 0, 1_024, 1_025]) {
                out.push({ role, holdsLock, redisHealthy, agentHealthy, linkUp, lagBytes, paused });
              }
            }
          }
        }
      }
    }
  }
  return out;
}

/** The rules of docs/http-api.md, written out once more, independently of the handler. */
const EXPECTED: Record<string, (s: NodeStatus) => boolean> = {
  "/master": (s) => s.holdsLock && s.role === "master" && s.redisHealthy,
  "/primary": (s) => s.holdsLock && s.role === "master" && s.redisHealthy,
  "/replica": (s) => s.role === "replica" && s.redisHealthy && s.linkUp,
  "/replica?lag=1024": (s) =>
    s.role === "replica" && s.redisHealthy && s.linkUp && s.lagBytes !== undefined &&
    s.lagBytes <= 1_024,
  "/replica?lag=1kB": (s) =>
    s.role === "replica" && s.redisHealthy && s.linkUp && s.lagBytes !== undefined &&
    s.lagBytes <= 1_024,
  "/health": (s) => s.agentHealthy && s.redisHealthy,
  "/liveness": () => true,
  "/readiness": (s) => s.role !== "unknown",
};

Deno.test("every check endpoint answers 200 or 503 exactly as its rule says, for every status", () => {
  const statuses = allStatuses();
  assert.equal(statuses.length, 3 * 32 * 4);
  for (const status of statuses) {
    const handler = handlerFor(status);
    for (const [target, rule] of Object.entries(EXPECTED)) {
      for (const method of ["GET", "HEAD"]) {
        const response = get(handler, target, method);
        assert.equal(
          response.status,
          rule(status) ? 200 : 503,
          `${method} ${target} for ${JSON.stringify(status)}`,
        );
        void response.body?.cancel();
      }
    }
  }
});

Deno.test("only the lock holder whose Redis is a healthy master passes /master", () => {
  const table: [string, Partial<NodeStatus>, number][] = [
    ["healthy master holding the lock", {}, 200],
    ["master without the lock (split brain or not yet demoted)", { holdsLock: false }, 503],
    ["lock holder whose Redis is still a replica (promoting)", { role: "replica" }, 503],
    ["lock holder whose Redis cannot be read", { role: "unknown", redisHealthy: false }, 503],
    ["lock holder whose master Redis is unhealthy", { redisHealthy: false }, 503],
    ["paused, otherwise a healthy master", { paused: true }, 200],
  ];
  for (const [name, overrides, expected] of table) {
    const response = get(handlerFor({ ...HEALTHY_MASTER, ...overrides }), "/master");
    assert.equal(response.status, expected, name);
    void response.body?.cancel();
  }
});

Deno.test("a role endpoint's body carries the status, and on 503 the reason", async () => {
  const ok = get(handlerFor(HEALTHY_MASTER), "/master");
  assert.equal(ok.headers.get("Content-Type"), "application/json; charset=utf-8");
  assert.equal(ok.headers.get("Cache-Control"), "no-store");
  assert.deepEqual(await ok.json(), {
    role: "master",
    holdsLock: true,
    redisHealthy: true,
    agentHealthy: true,
    linkUp: false,
    lagBytes: null,
    paused: false,
  });
  const refused = get(handlerFor(HEALTHY_REPLICA), "/primary");
  const body = await refused.json();
  assert.equal(refused.status, 503);
  assert.equal(body.role, "replica");
  assert.equal(body.reason, "Redis is replica, not master");

  const lagging = get(handlerFor({ ...HEALTHY_REPLICA, lagBytes: 5_000 }), "/replica?lag=4096");
  assert.equal(lagging.status, 503);
  assert.equal((await lagging.json()).reason, "the replication lag of 5000 bytes exceeds 4096");
});

Deno.test("HEAD answers with the same status and headers as GET and no body", async () => {
  for (const target of ["/master", "/replica", "/state", "/metrics", "/nope"]) {
    const handler = handlerFor(HEALTHY_REPLICA, { metrics: "resec_up 1\n" });
    const full = get(handler, target);
    const head = get(handler, target, "HEAD");
    assert.equal(head.status, full.status, target);
    assert.equal(head.headers.get("Content-Type"), full.headers.get("Content-Type"), target);
    assert.equal(head.body, null, target);
    assert.notEqual(await full.text(), "", target);
  }
});

Deno.test("/replica?lag bounds are inclusive and need a known lag", () => {
  const table: [number | undefined, string, number][] = [
    [1_024, "1024", 200],
    [1_025, "1024", 503],
    [undefined, "1024", 503],
    [0, "0", 200],
    [1, "0", 503],
    [1_048_576, "1MB", 200],
    [1_048_577, "1MB", 503],
    [undefined, "", 400],
  ];
  for (const [lagBytes, bound, expected] of table) {
    const response = get(handlerFor({ ...HEALTHY_REPLICA, lagBytes }), `/replica?lag=${bound}`);
    assert.equal(response.status, expected, `lag ${lagBytes} against ?lag=${bound}`);
    void response.body?.cancel();
  }
  const unbounded = get(handlerFor({ ...HEALTHY_REPLICA, lagBytes: undefined }), "/replica");
  assert.equal(unbounded.status, 200, "without ?lag an unknown lag does not matter");
  void unbounded.body?.cancel();
});

Deno.test("a bad or repeated lag bound is a 400 with a short message, whatever the status", async () => {
  const huge = "9".repeat(10_000);
  for (
    const query of ["lag=abc", "lag=-1", "lag=1XB", "lag=", "lag=1&lag=2", `lag=${huge}`, "lag=%ZZ"]
  ) {
    for (const status of [HEALTHY_REPLICA, HEALTHY_MASTER]) {
      const response = get(handlerFor(status), `/replica?${query}`);
      assert.equal(response.status, 400, query);
      const body = await response.json();
      assert.ok(body.error.length < 200, `short message for ${query.slice(0, 20)}`);
    }
  }
  const response = get(handlerFor(HEALTHY_REPLICA), "/replica?lag=abc");
  assert.match(
    (await response.json()).error,
    /^Cannot parse lag "abc": expected a number of bytes/,
  );
});

Deno.test("unknown query parameters and odd query strings are ignored by role endpoints", () => {
  for (const query of ["?x=1", "?%%%&&==", "?lag_extra=5", "?" + "a".repeat(50_000)]) {
    const response = get(handlerFor(HEALTHY_MASTER), `/master${query}`);
    assert.equal(response.status, 200, query.slice(0, 20));
    void response.body?.cancel();
  }
});

Deno.test("/liveness answers 200 even when the status source throws", async () => {
  const handler = createHttpHandler({
    status: {
      status: () => {
        throw new Error("broken");
      },
      state: () => ({}),
    },
    metrics: { render: () => "" },
  });
  const response = get(handler, "/liveness");
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { alive: true });
});

Deno.test("/readiness is 200 once the role is known and 503 before", () => {
  for (const [role, expected] of [["master", 200], ["replica", 200], ["unknown", 503]] as const) {
    const response = get(handlerFor({ ...HEALTHY_REPLICA, role }), "/readiness");
    assert.equal(response.status, expected, role);
    void response.body?.cancel();
  }
});

Deno.test("/state answers the state as JSON, errors as name and message, bigints as strings", async () => {
  const state = { decision: "replica", last: new TypeError("boom"), big: 12n, nested: [1, null] };
  const response = get(handlerFor(HEALTHY_REPLICA, { state }), "/state");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("Content-Type"), "application/json; charset=utf-8");
  assert.deepEqual(await response.json(), {
    decision: "replica",
    last: { name: "TypeError", message: "boom" },
    big: "12",
    nested: [1, null],
  });
});

Deno.test("/metrics answers the rendered text with the Prometheus 0.0.4 content type", async () => {
  const response = get(handlerFor(HEALTHY_MASTER, { metrics: "resec_up 1\n" }), "/metrics");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  assert.equal(await response.text(), "resec_up 1\n");
});

Deno.test("an unknown path is a 404, including near misses of real ones", async () => {
  for (const path of ["/", "/nope", "/master/", "/MASTER", "/master/x", "//master", "/%00"]) {
    for (const method of ["GET", "POST", "BREW"]) {
      const response = get(handlerFor(HEALTHY_MASTER), path, method);
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.deepEqual(await response.json(), { error: "Not found" });
    }
  }
});

Deno.test("a known path with a method it does not take is a 405 naming the allowed ones", async () => {
  for (const path of Object.keys(ROUTES)) {
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "X-ODD"]) {
      const response = get(handlerFor(HEALTHY_MASTER), path, method);
      assert.equal(response.status, 405, `${method} ${path}`);
      assert.equal(response.headers.get("Allow"), "GET, HEAD");
      assert.deepEqual(await response.json(), { error: "Method not allowed" });
    }
  }
});

Deno.test("a status source or metrics that throw give a 500 and an error log, never a throw", async () => {
  const logger = new CapturingLogger();
  const handler = createHttpHandler({
    status: {
      status: () => {
        throw new Error("status exploded");
      },
      state: () => {
        throw new Error("state exploded");
      },
    },
    metrics: {
      render: () => {
        throw new Error("render exploded");
      },
    },
    logger,
  });
  for (const path of ["/master", "/replica", "/health", "/readiness", "/state", "/metrics"]) {
    for (const method of ["GET", "HEAD"]) {
      const response = get(handler, path, method);
      assert.equal(response.status, 500, `${method} ${path}`);
      if (method === "GET") assert.deepEqual(await response.json(), { error: "Internal error" });
    }
  }
  const errors = logger.lines.filter((line) => line.level === "error");
  assert.equal(errors.length, 12);
  assert.equal(errors[0]!.message, "http request failed");
  assert.equal(errors[0]!.fields.path, "/master");
  assert.ok(logger.text().includes("status exploded"));
});

Deno.test("state that cannot be serialised (a cycle) is a 500, not a crash", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const response = get(handlerFor(HEALTHY_MASTER, { state: cyclic }), "/state");
  assert.equal(response.status, 500);
  void response.body?.cancel();
});
