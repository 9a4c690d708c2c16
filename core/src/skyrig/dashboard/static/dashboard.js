// The dashboard page: each section fetches its own JSON endpoint and renders it, so that an error in one
// section shows there and nowhere else. Text is always set as text, never parsed as HTML; the only markup
// inserted is the graph's SVG, which the server drew and escaped.
"use strict";

const ENVIRONMENT = document.body.dataset.environment;
const MESSAGES_EVERY_MS = 2000;

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function body(section) {
  return document.querySelector(`#${section} .body`);
}

function show(section, ...content) {
  body(section).replaceChildren(...content.flat());
}

function errorBox(data) {
  return el(
    "div",
    { class: "error", role: "alert" },
    el("div", {}, data.error || "something went wrong"),
    data.problems ? el("ul", {}, data.problems.map((p) => el("li", {}, p))) : null,
    data.hint ? el("div", { class: "hint" }, "hint: ", data.hint) : null,
  );
}

async function fetchJSON(url, options) {
  try {
    const response = await fetch(url, options);
    let data;
    try {
      data = await response.json();
    } catch (error) {
      data = { error: `the dashboard answered ${response.status} without JSON` };
    }
    return { ok: response.ok, status: response.status, data };
  } catch (error) {
    return { ok: false, status: 0, data: { error: `the dashboard is not answering (${error.message})` } };
  }
}

async function load(section, url, render) {
  const { ok, data } = await fetchJSON(url);
  if (!ok) {
    show(section, errorBox(data));
    return;
  }
  try {
    render(data);
  } catch (error) {
    show(section, errorBox({ error: `could not show this section: ${error.message}` }));
  }
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function table(headings, rows) {
  return el(
    "table",
    {},
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows),
  );
}

function settingText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

// -- sections -------------------------------------------------------------------------------------

function renderStatus(data) {
  document.getElementById("app-name").textContent = data.app;
  document.title = `skyrig · ${data.app} · ${ENVIRONMENT}`;
  if (!data.environments.length) {
    show("status", el("p", { class: "empty" }, "skyrig.toml declares no environments."));
    return;
  }
  const rows = data.environments.map((env) => {
    const overrides = Object.entries(env.overrides).map(([family, p]) => `${family}: ${p}`);
    const driftNodes = Object.entries(env.drift);
    let drift;
    if (!env.applied) drift = el("span", { class: "muted" }, "–");
    else if (driftNodes.length)
      drift = el(
        "span",
        { class: "warn" },
        driftNodes.map(([node, fields]) => `${node} (${fields.join(", ")})`).join("; "),
      );
    else drift = el("span", { class: "ok" }, "no drift");
    return el(
      "tr",
      { class: env.current ? "current" : null, "data-env": env.name },
      el("td", {}, el("strong", {}, env.name), env.current ? el("span", { class: "muted" }, " (this dashboard)") : null),
      el("td", {}, env.type),
      el("td", {}, env.provider, overrides.length ? el("div", { class: "muted" }, overrides.join(", ")) : null),
      el("td", {}, env.applied ? `${env.nodes} node${env.nodes === 1 ? "" : "s"}` : ""),
      el(
        "td",
        {},
        env.applied ? when(env.last_applied) || "unfinished" : el("span", { class: "muted" }, "never applied"),
        env.pending.length ? el("div", { class: "warn" }, `unfinished: ${env.pending.join(", ")}`) : null,
      ),
      el("td", {}, drift),
      el("td", {}, env.running ? el("span", { class: "ok" }, "running (skyrig run)") : ""),
    );
  });
  show("status", table(["environment", "type", "provider", "nodes", "last applied", "drift", ""], rows));
}

function renderModel(data) {
  document.getElementById("app-name").textContent = data.app;
  const services = data.services.map((s) =>
    el(
      "tr",
      { "data-service": s.name },
      el("td", {}, el("strong", {}, s.name)),
      el("td", { class: "mono" }, s.app),
      el("td", { class: "mono" }, s.package || "(app root)"),
      el("td", { class: "mono muted" }, s.declared_at),
    ),
  );
  const resources = data.resources.map((r) =>
    el(
      "tr",
      { "data-resource": `${r.kind}/${r.name}` },
      el("td", {}, r.kind.replaceAll("_", " ")),
      el("td", {}, el("strong", {}, r.name)),
      el("td", {}, r.service),
      el("td", { class: "mono muted" }, r.declared_at),
      el(
        "td",
        {},
        el(
          "ul",
          { class: "settings" },
          Object.entries(r.settings).map(([key, value]) => el("li", {}, `${key} = ${settingText(value)}`)),
        ),
      ),
    ),
  );
  const uses = data.uses.map((u) =>
    el(
      "tr",
      {},
      el("td", {}, u.service),
      el("td", {}, `${u.kind.replaceAll("_", " ")} `, el("strong", {}, u.resource)),
      el("td", {}, u.owner === u.service ? el("span", { class: "muted" }, "itself") : u.owner || "?"),
      el("td", { class: "mono" }, u.operations.join(", ")),
    ),
  );
  const count = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  show(
    "model",
    el(
      "p",
      { class: "muted" },
      `${data.app}: ${count(data.services.length, "service")}, ${count(data.resources.length, "resource")}, read from the code (none of it was run).`,
    ),
    el("h3", {}, "Services"),
    data.services.length
      ? table(["service", "app", "package", "declared at"], services)
      : el("p", { class: "empty" }, "No services declared."),
    el("h3", {}, "Resources"),
    data.resources.length
      ? table(["kind", "name", "owned by", "declared at", "settings"], resources)
      : el("p", { class: "empty" }, "No resources declared."),
    el("h3", {}, "Who uses what"),
    data.uses.length
      ? table(["service", "uses", "owned by", "operations"], uses)
      : el("p", { class: "empty" }, "No service uses a resource."),
  );
}

function renderGraph(data) {
  const frame = el("div", { class: "graph-frame" });
  frame.innerHTML = data.svg; // drawn and escaped by the server
  show(
    "graph",
    el(
      "p",
      { class: "muted" },
      `${data.nodes.length} node${data.nodes.length === 1 ? "" : "s"}, each right of what it depends on. `,
      "Hover a node for its type and dependencies; ",
      el("a", { href: "/graph.svg", target: "_blank" }, "open as SVG"),
      ".",
    ),
    frame,
  );
}

function describeOutcome(result) {
  const { ok, data } = result;
  if (ok && data.ok) {
    const seconds = typeof data.seconds === "number" ? ` in ${data.seconds.toFixed(2)} s` : "";
    return el("span", { class: "ok" }, `✓ ran${seconds}`);
  }
  if (ok) return el("span", { class: "bad" }, `✗ failed: ${data.error || "the job reported a failure"}`);
  return el(
    "span",
    { class: "bad", role: "alert" },
    data.error || "could not run the job",
    data.hint ? el("div", { class: "muted" }, data.hint) : null,
  );
}

async function runNow(job, button, outcome) {
  button.disabled = true;
  outcome.replaceChildren(el("span", { class: "muted" }, "running…"));
  const result = await fetchJSON(`/api/cron/${encodeURIComponent(job)}`, {
    method: "POST",
    headers: { "x-skyrig-dashboard": "1" },
  });
  outcome.replaceChildren(describeOutcome(result));
  button.disabled = false;
}

function renderCron(data) {
  if (!data.jobs.length) {
    show("cron", el("p", { class: "empty" }, "The app declares no cron jobs."));
    return;
  }
  const note = data.running
    ? el(
        "p",
        { class: "muted" },
        `skyrig run is serving ${data.environment}; `,
        data.scheduled ? "jobs also run on their schedule." : "jobs run only when you press Run now (start it with --cron to run them on schedule).",
      )
    : el(
        "p",
        { class: "muted" },
        `No skyrig run is serving ${data.environment} right now: Run now needs one (skyrig run --env ${data.environment}).`,
      );
  const rows = data.jobs.map((job) => {
    const outcome = el("td", { class: "outcome" });
    const button = el("button", { type: "button" }, "Run now");
    button.addEventListener("click", () => runNow(job.name, button, outcome));
    return el(
      "tr",
      { "data-job": job.name },
      el("td", {}, el("strong", {}, job.name), job.title ? el("div", { class: "muted" }, job.title) : null),
      el("td", { class: "mono" }, job.every ? `every ${job.every}` : job.schedule),
      el("td", {}, job.service),
      el("td", { class: "mono" }, job.endpoint),
      el("td", {}, button),
      outcome,
    );
  });
  show("cron", note, table(["job", "when", "service", "endpoint", "", "outcome"], rows));
}

function renderSecrets(data) {
  if (!data.secrets.length) {
    show("secrets", el("p", { class: "empty" }, "The app declares no secrets."));
    return;
  }
  const missing = data.secrets.filter((s) => !s.set);
  const rows = data.secrets.map((s) =>
    el(
      "tr",
      { "data-secret": s.name },
      el("td", {}, el("strong", {}, s.name)),
      el("td", {}, s.service),
      el("td", {}, s.set ? el("span", { class: "ok" }, "set") : el("span", { class: "bad" }, "missing")),
      el("td", {}, s.set ? "" : el("code", {}, s.command)),
    ),
  );
  show(
    "secrets",
    el(
      "p",
      { class: missing.length ? "warn" : "ok" },
      missing.length
        ? `${missing.length} secret${missing.length === 1 ? " has" : "s have"} no value in ${data.environment} (kept by ${data.provider}); set each in the app's folder with the command shown. Values are never shown here.`
        : `Every secret has a value in ${data.environment} (kept by ${data.provider}).`,
    ),
    table(["secret", "service", "", "to set it"], rows),
  );
}

let lastMessages = null;

function renderMessages(data) {
  const text = JSON.stringify(data);
  if (text === lastMessages) return; // unchanged: keep the reader's scroll and selection
  lastMessages = text;
  if (!data.messages.length) {
    show(
      "messages",
      el(
        "p",
        { class: "empty" },
        "No messages yet. Messages published while skyrig run serves the app show here, newest first, ",
        `with each delivery attempt (reported by the ${data.provider} provider; a provider that cannot tell shows none).`,
      ),
    );
    return;
  }
  show(
    "messages",
    data.messages.map((m) =>
      el(
        "div",
        { class: "message", "data-message": m.id },
        el("div", {}, el("strong", {}, m.topic), " ", el("span", { class: "mono muted" }, m.id), " ", el("span", { class: "muted" }, when(m.published_at))),
        el("pre", {}, JSON.stringify(m.data, null, 2)),
        (m.deliveries || []).length
          ? table(
              ["subscription", "attempt", "outcome", "error", "at"],
              m.deliveries.map((d) =>
                el(
                  "tr",
                  {},
                  el("td", {}, d.subscription),
                  el("td", {}, d.attempt),
                  el("td", { class: d.outcome === "ok" ? "ok" : d.outcome === "pending" ? "muted" : "bad" }, d.outcome),
                  el("td", {}, d.error || ""),
                  el("td", { class: "muted" }, when(d.at)),
                ),
              ),
            )
          : el("p", { class: "muted" }, "not delivered yet"),
      ),
    ),
  );
}

async function refreshMessages() {
  const { ok, data } = await fetchJSON("/api/messages?limit=50");
  if (ok) {
    renderMessages(data);
  } else {
    lastMessages = null;
    show("messages", errorBox(data));
  }
  setTimeout(refreshMessages, MESSAGES_EVERY_MS);
}

load("status", "/api/status", renderStatus);
load("model", "/api/model", renderModel);
load("graph", "/api/graph", renderGraph);
load("cron", "/api/cron", renderCron);
load("secrets", "/api/secrets", renderSecrets);
refreshMessages();
