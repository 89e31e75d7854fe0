// The page of `pomdev preview`: an MCP Apps host. It lists the server's
// tools (through the preview's local API, which calls the server with
// pomdev's MCP client), builds a form from a tool's inputSchema, calls the
// tool and renders its widget with the official host-side bridge
// (AppBridge) in a sandbox on a second origin, as ChatGPT or Claude would.
// ?check=1&tool=NAME&args=JSON renders once and reports "done": the
// headless run of `pomdev preview --check`.

import "./jitless";
import {
  AppBridge,
  PostMessageTransport,
  getToolUiResourceUri,
  isToolVisibilityAppOnly,
  type McpUiDisplayMode,
  type McpUiHostContext,
  type McpUiResourceCsp,
  type McpUiResourcePermissions,
} from "@modelcontextprotocol/ext-apps/app-bridge";

type JSONObject = Record<string, unknown>;
interface Tool {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: JSONObject;
  _meta?: JSONObject;
}
interface Profile {
  name: string;
  title: string;
  sandbox: string;
  noLocalhost: boolean;
}
interface ServerInfo {
  url: string;
  server?: { name: string; version?: string; title?: string };
  protocol?: string;
  tools: Tool[];
  profiles: Profile[];
  resources: boolean;
}
interface Report {
  kind: string;
  message: string;
  tool?: string;
  uri?: string;
  blocked?: string;
  directive?: string;
  mounted?: boolean;
  hint?: string;
  text?: string;
}
type CallResult = JSONObject & { content?: unknown[]; isError?: boolean };

class APIError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

async function api<T>(path: string, body?: unknown): Promise<T> {
  const init: RequestInit =
    body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(`api/${path}`, init);
  const j = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new APIError(j?.error ?? `${r.status} ${r.statusText}`, j?.code);
  return j as T;
}

const params = new URLSearchParams(location.search);
const check = params.has("check");
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const state = {
  info: null as ServerInfo | null,
  tool: null as Tool | null,
  args: {} as JSONObject,
  result: null as CallResult | null,
  profile: params.get("profile") ?? "",
  theme: (params.get("theme") ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light")) as "light" | "dark",
  display: (params.get("display") ?? "inline") as McpUiDisplayMode,
  locale: params.get("locale") ?? navigator.language ?? "en-US",
  width: Number(params.get("width") ?? 768),
  mounted: false,
  text: "",
  problems: 0,
};

let bridge: AppBridge | null = null;
let frame: HTMLIFrameElement | null = null;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...kids: (Node | string)[]) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const k of kids) e.append(k);
  return e;
}

function profile(): Profile {
  const ps = state.info?.profiles ?? [];
  return ps.find((p) => p.name === state.profile) ?? ps[0];
}

// report shows a finding in Problems (or the model pane) and sends it to
// the preview, which prints it and fails --check on it.
function report(r: Report) {
  r.tool ??= state.tool?.name;
  void fetch("api/report", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(r), keepalive: true }).catch(() => {});
  if (r.kind === "mounted") state.mounted = true;
  if (r.kind === "mounted" || r.kind === "done" || r.kind === "log") return;
  if (r.kind === "message") {
    $("model").prepend(el("li", {}, r.message));
    while ($("model").childElementCount > 500) $("model").lastElementChild?.remove();
    return;
  }
  state.problems++;
  $("nproblems").textContent = String(state.problems);
  const li = el("li", { className: "bad" }, `${r.kind}: ${r.message}`);
  if (r.hint) li.append(el("div", { className: "muted" }, r.hint));
  $("problems").prepend(li);
  while ($("problems").childElementCount > 500) $("problems").lastElementChild?.remove();
}

let logged = 0;
function log(dir: string, msg: unknown) {
  logAs(dir, msg, msg as JSONObject);
}
// logAs logs msg under the summary of labelled (its method, or what a
// result answers).
function logAs(dir: string, msg: unknown, labelled: JSONObject) {
  logged++;
  $("nlog").textContent = String(logged);
  const m = labelled;
  const what = String(m.method ?? ("error" in m ? "error" : "result"));
  const d = el("details", {}, el("summary", {}, el("span", { className: "dir" }, dir), what), el("pre", {}, JSON.stringify(msg, null, 2)));
  $("log").prepend(el("li", {}, d));
  const list = $("log");
  while (list.childElementCount > 500) list.lastElementChild?.remove();
}

// Every message between host and widget goes through the log.
// Results are labelled with the method of the request they answer.
type Transport = Parameters<AppBridge["connect"]>[0];
function logging(t: PostMessageTransport): Transport {
  const asked = { host: new Map<unknown, string>(), widget: new Map<unknown, string>() };
  const label = (m: JSONObject, from: "host" | "widget") => {
    const to = from === "host" ? "widget" : "host";
    if (typeof m.method === "string") {
      if ("id" in m && asked[from].size < 1000) asked[from].set(m.id, m.method);
      return m;
    }
    const method = asked[to].get(m.id);
    asked[to].delete(m.id);
    return method ? { ...m, method: `${"error" in m ? "error" : "result"} of ${method}` } : m;
  };
  const w: Transport = {
    start: () => t.start(),
    send: (m, o) => {
      logAs("host → widget", m, label(m as JSONObject, "host"));
      return t.send(m, o);
    },
    close: () => t.close(),
  };
  t.onmessage = (m, extra) => {
    logAs("widget → host", m, label(m as JSONObject, "widget"));
    w.onmessage?.(m, extra);
  };
  t.onclose = () => w.onclose?.();
  t.onerror = (e) => w.onerror?.(e);
  return w;
}

// The style variables a host sends for its theme (McpUiStyleVariableKey);
// widgets that use them follow the theme.
const palette = {
  light: { bg: ["#ffffff", "#f5f5f4", "#e7e5e4", "#1c1917"], text: ["#1c1917", "#57534e", "#78716c", "#fafaf9"], border: ["#d6d3d1", "#e7e5e4", "#f5f5f4", "#1c1917"] },
  dark: { bg: ["#1c1c1c", "#262626", "#333333", "#fafafa"], text: ["#f5f5f5", "#c7c7c7", "#9a9a9a", "#1c1c1c"], border: ["#3f3f3f", "#333333", "#2a2a2a", "#fafafa"] },
};
function styles(theme: "light" | "dark") {
  const p = palette[theme];
  const v: Record<string, string> = {
    "--font-sans": "system-ui, -apple-system, 'Segoe UI', sans-serif",
    "--font-mono": "ui-monospace, 'SF Mono', Menlo, monospace",
    "--font-weight-normal": "400",
    "--font-weight-medium": "500",
    "--font-weight-semibold": "600",
    "--font-weight-bold": "700",
    "--font-text-sm-size": "14px",
    "--font-text-md-size": "16px",
    "--border-radius-sm": "4px",
    "--border-radius-md": "8px",
    "--border-radius-lg": "12px",
    "--border-radius-full": "9999px",
    "--border-width-regular": "1px",
    "--color-text-info": theme === "dark" ? "#8ab4ff" : "#1d4ed8",
    "--color-text-danger": theme === "dark" ? "#ff8a80" : "#b91c1c",
    "--color-text-success": theme === "dark" ? "#7ee2a8" : "#15803d",
    "--color-text-warning": theme === "dark" ? "#ffd479" : "#a16207",
    "--color-ring-primary": theme === "dark" ? "#8ab4ff" : "#2e5bff",
  };
  ["primary", "secondary", "tertiary", "inverse"].forEach((k, i) => {
    v[`--color-background-${k}`] = p.bg[i];
    v[`--color-text-${k}`] = p.text[i];
    v[`--color-border-${k}`] = p.border[i];
  });
  return { variables: v };
}

function hostContext(): McpUiHostContext {
  const height = state.display === "inline" ? undefined : state.display === "pip" ? 240 : window.innerHeight;
  const width = state.display === "fullscreen" ? window.innerWidth : state.display === "pip" ? 360 : state.width;
  return {
    theme: state.theme,
    styles: styles(state.theme) as McpUiHostContext["styles"],
    displayMode: state.display,
    availableDisplayModes: ["inline", "fullscreen", "pip"],
    locale: state.locale,
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    platform: "web",
    userAgent: "pomdev-preview",
    deviceCapabilities: { touch: false, hover: true },
    containerDimensions: height ? { width, height } : { width, maxHeight: 800 },
    ...(state.tool ? { toolInfo: { tool: state.tool as never } } : {}),
  };
}

function applyStage() {
  const stage = $("stage");
  stage.className = `${state.display} ${state.theme}`;
  stage.style.background = palette[state.theme].bg[0];
  // A --check screenshot is the host's surface around the widget too.
  if (check) document.body.style.background = palette[state.theme].bg[0];
  stage.style.width = state.display === "inline" ? `${state.width}px` : "";
  // The host's own way back from fullscreen and picture-in-picture.
  $("exit-display").hidden = check || state.display === "inline";
  bridge?.setHostContext(hostContext());
}

function teardown() {
  const b = bridge;
  bridge = null;
  if (b) void b.teardownResource({}).catch(() => {}).finally(() => b.close());
  frame?.remove();
  frame = null;
  state.mounted = false;
  state.text = "";
  $("notes").replaceChildren();
}

function note(text: string) {
  $("notes").append(el("div", {}, text));
}

function isLocal(src: string) {
  return /^[a-z]+:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i.test(src);
}

// mount renders the tool's widget and hands it the input and result.
async function mount(tool: Tool, args: JSONObject, result: CallResult | null) {
  teardown();
  const uri = getToolUiResourceUri(tool as never);
  if (!uri) {
    note(`${tool.name} has no widget (_meta.ui.resourceUri); its result is in Messages.`);
    return;
  }
  note(`reading ${uri}…`);
  const read = await api<{ contents: (JSONObject & { uri: string; text?: string; blob?: string; mimeType?: string })[] }>("read", { uri, watch: !check });
  $("notes").replaceChildren();
  const c = read.contents.find((x) => x.uri === uri) ?? read.contents[0];
  if (!c) throw new APIError(`${uri}: no contents`);
  const html = c.text ?? (c.blob ? new TextDecoder().decode(Uint8Array.from(atob(c.blob), (ch) => ch.charCodeAt(0))) : "");
  const ui = ((c._meta as JSONObject | undefined)?.ui ?? {}) as { csp?: McpUiResourceCsp; permissions?: McpUiResourcePermissions; domain?: string };
  const p = profile();
  const sb = await api<{
    url: string;
    origin: string;
    policy: string;
    refused: string[];
    dropped: string[];
    hosts?: { rule: string; severity: string; message: string; fix: string }[];
  }>("sandbox", {
    profile: p.name,
    csp: ui.csp ?? {},
    domain: typeof ui.domain === "string" ? ui.domain : "",
    uri,
    tool: tool.name,
  });
  for (const d of sb.dropped) {
    report({
      kind: "host",
      uri,
      message: `the ${p.title} host does not load ${d} (the developer's machine is not reachable from its servers)`,
      hint: isLocal(d) ? "build the widget inline: pomdev up --inline (or serve its assets from a public origin)" : undefined,
    });
  }
  for (const r of sb.refused) report({ kind: "host", uri, message: `_meta.ui.csp entry ${JSON.stringify(r)} is not an origin; ignored` });
  // What the real host refuses beyond the specification (pomdev inspect --host).
  for (const f of sb.hosts ?? []) {
    report({ kind: f.severity === "error" ? "host" : "advice", uri, message: `${f.rule}: ${f.message}`, hint: f.fix });
  }
  if (ui.domain) note(`_meta.ui.domain ${ui.domain}: a real host serves the widget from that origin; here it has one of its own, ${sb.origin}.`);

  const f = el("iframe", { title: `${tool.name} widget`, src: sb.url });
  f.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms allow-popups allow-popups-to-escape-sandbox");
  $("stage").append(f);
  frame = f;
  applyStage();
  const win = f.contentWindow;
  if (!win) throw new APIError("the widget frame has no window");
  const b = new AppBridge(
    null,
    { name: "pomdev-preview", version: "1" },
    {
      openLinks: {},
      serverTools: {},
      serverResources: {},
      logging: {},
      message: { text: {} },
      updateModelContext: { text: {} },
      sandbox: { csp: ui.csp, permissions: ui.permissions },
    },
    { hostContext: hostContext() },
  );
  bridge = b;
  b.oncalltool = async (req) => {
    try {
      return (await api<CallResult>("call", req)) as never;
    } catch (e) {
      throw new Error(`tools/call ${req.name}: ${(e as Error).message}`);
    }
  };
  b.onreadresource = async (req) => api("read", { uri: req.uri });
  b.onlistresources = async (req) => api("resources", { cursor: req?.cursor ?? "" });
  b.onmessage = async (req) => {
    report({ kind: "message", message: `ui/message: ${JSON.stringify(req.content)}` });
    return {};
  };
  b.onupdatemodelcontext = async (req) => {
    report({ kind: "message", message: `ui/update-model-context: ${JSON.stringify(req)}` });
    return {};
  };
  b.onopenlink = async (req) => {
    let ok = false;
    try {
      ok = ["http:", "https:"].includes(new URL(req.url).protocol);
    } catch {}
    report({ kind: "message", message: `ui/open-link: ${req.url}${ok ? "" : " (refused: not http or https)"}` });
    if (ok && !check) window.open(req.url, "_blank", "noopener,noreferrer");
    return ok ? {} : { isError: true };
  };
  b.onrequestdisplaymode = async (req) => {
    if (["inline", "fullscreen", "pip"].includes(req.mode)) {
      state.display = req.mode;
      ($("display") as HTMLSelectElement).value = req.mode;
      applyStage();
    }
    return { mode: state.display };
  };
  b.onsizechange = ({ height }) => {
    if (state.display === "inline" && height && frame) frame.style.height = `${Math.min(Math.max(height, 40), 4000)}px`;
  };
  b.onloggingmessage = (m) => report({ kind: "log", message: JSON.stringify(m) });
  b.onrequestteardown = () => teardown();
  b.addEventListener("sandboxready", () => {
    void b.sendSandboxResourceReady({ html, sandbox: p.sandbox, csp: ui.csp, permissions: ui.permissions });
  });
  const ready = new Promise<void>((resolve) =>
    b.addEventListener("initialized", async () => {
      await b.sendToolInput({ arguments: args });
      if (result) await b.sendToolResult(result as never);
      resolve();
    }),
  );
  await b.connect(logging(new PostMessageTransport(win, win)));
  return { bridge: b, ready };
}

// The page's own policy refusing something (a frame, a script) is a
// failure of the preview, reported like the widget's.
document.addEventListener("securitypolicyviolation", (e) => {
  report({ kind: "host", message: `the preview page's CSP blocked ${e.effectiveDirective} ${e.blockedURI}` });
});

// Reports from the sandbox's watcher in the widget.
window.addEventListener("message", (e) => {
  if (!frame || e.source !== frame.contentWindow) return;
  const r = (e.data as JSONObject | null)?.pomdevPreview as Report | undefined;
  if (!r || typeof r.kind !== "string") return;
  if (r.kind === "content") {
    state.text = String(r.message ?? "").slice(0, 4000);
    return;
  }
  const rep: Report = { kind: r.kind, message: String(r.message ?? "") };
  if (r.blocked) rep.blocked = String(r.blocked);
  if (r.directive) rep.directive = String(r.directive);
  if (rep.kind === "csp" && rep.blocked && isLocal(new URL(rep.blocked, "http://x").origin) && profile()?.noLocalhost) {
    rep.hint = "this host refuses assets on localhost: build the widget inline (pomdev up --inline)";
  } else if (rep.kind === "csp") {
    rep.hint = "declare the origin in the resource's _meta.ui.csp (resourceDomains for scripts, styles, images and fonts; connectDomains for fetch and WebSocket)";
  }
  report(rep);
});

async function run(tool: Tool, args: JSONObject) {
  state.tool = tool;
  state.args = args;
  state.result = null;
  const m = await mount(tool, args, null);
  let res: CallResult;
  try {
    res = await api<CallResult>("call", { name: tool.name, arguments: args });
  } catch (e) {
    report({ kind: "tool", message: `tools/call ${tool.name}: ${(e as Error).message}` });
    if (m) await m.bridge.sendToolCancelled({ reason: (e as Error).message }).catch(() => {});
    return;
  }
  state.result = res;
  logAs("server → host", res, { method: `result of tools/call ${tool.name}` });
  if (res.isError) report({ kind: "tool", message: `tools/call ${tool.name} returned isError: ${JSON.stringify(res.content)}` });
  // The result follows the input once the widget has initialized.
  if (m) void m.ready.then(() => (m.bridge === bridge ? m.bridge.sendToolResult(res as never) : undefined));
}

// The argument form: one field per property of a flat inputSchema, and
// the JSON it makes, which is what is sent (and can be edited).
function form(tool: Tool) {
  const f = $("form") as HTMLFormElement;
  f.replaceChildren();
  const schema = tool.inputSchema ?? {};
  const props = (schema.properties ?? {}) as Record<string, JSONObject>;
  const required = new Set((schema.required as string[] | undefined) ?? []);
  const json = el("textarea", { name: "json", spellcheck: false });
  const fields: Record<string, () => unknown> = {};
  const sync = () => {
    const o: JSONObject = {};
    for (const [k, get] of Object.entries(fields)) {
      const v = get();
      if (v !== undefined) o[k] = v;
    }
    json.value = JSON.stringify(o, null, 2);
  };
  f.append(el("div", { className: "muted" }, tool.description ?? ""));
  for (const [name, s] of Object.entries(props)) {
    const label = `${name}${required.has(name) ? " *" : ""}${s.description ? ` — ${s.description}` : ""}`;
    let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
    if (Array.isArray(s.enum)) {
      const sel = el("select", { name });
      for (const v of s.enum) sel.append(el("option", { value: JSON.stringify(v) }, String(v)));
      fields[name] = () => JSON.parse(sel.value);
      input = sel;
    } else if (s.type === "boolean") {
      const cb = el("input", { type: "checkbox", name, checked: s.default === true });
      fields[name] = () => cb.checked;
      input = cb;
    } else if (s.type === "number" || s.type === "integer") {
      const n = el("input", { type: "number", name, value: s.default !== undefined ? String(s.default) : "" });
      fields[name] = () => (n.value === "" ? undefined : Number(n.value));
      input = n;
    } else if (s.type === "string" || s.type === undefined) {
      const t = el("input", { type: "text", name, value: typeof s.default === "string" ? s.default : "" });
      fields[name] = () => (t.value === "" && !required.has(name) ? undefined : t.value);
      input = t;
    } else {
      const t = el("textarea", { name, value: s.default !== undefined ? JSON.stringify(s.default) : "" });
      fields[name] = () => {
        try {
          return t.value === "" ? undefined : JSON.parse(t.value);
        } catch {
          return t.value;
        }
      };
      input = t;
    }
    input.addEventListener("input", sync);
    input.addEventListener("change", sync);
    f.append(el("label", {}, label, input));
  }
  sync();
  f.append(el("label", {}, "Arguments (JSON)", json));
  f.append(el("div", { className: "row" }, el("button", { className: "primary", type: "submit" }, `Call ${tool.name}`)));
  f.onsubmit = (e) => {
    e.preventDefault();
    let args: JSONObject;
    try {
      args = JSON.parse(json.value || "{}");
    } catch (err) {
      report({ kind: "host", message: `arguments are not JSON: ${(err as Error).message}` });
      return;
    }
    void run(tool, args).catch((err) => report({ kind: "host", message: String(err.message ?? err) }));
  };
}

function select(tool: Tool) {
  state.tool = tool;
  for (const b of $("tools").querySelectorAll("button")) b.classList.toggle("on", b.dataset.tool === tool.name);
  form(tool);
}

function tools(info: ServerInfo) {
  const nav = $("tools");
  nav.replaceChildren();
  const withUI = info.tools.filter((t) => getToolUiResourceUri(t as never));
  const others = info.tools.filter((t) => !getToolUiResourceUri(t as never));
  for (const t of [...withUI, ...others]) {
    const appOnly = isToolVisibilityAppOnly(t as never);
    const b = el("button", { type: "button" }, t.title ?? t.name, el("small", {}, getToolUiResourceUri(t as never) ? (appOnly ? "app only" : "widget") : "no widget"));
    b.dataset.tool = t.name;
    b.onclick = () => select(t);
    nav.append(b);
  }
  if (withUI[0]) select(withUI[0]);
}

function controls(info: ServerInfo) {
  const sel = $("profile") as HTMLSelectElement;
  for (const p of info.profiles) sel.append(el("option", { value: p.name }, p.title));
  sel.value = profile().name;
  sel.onchange = () => {
    state.profile = sel.value;
    if (state.tool && state.result) void mount(state.tool, state.args, state.result);
  };
  const theme = $("theme") as HTMLSelectElement;
  theme.value = state.theme;
  theme.onchange = () => {
    state.theme = theme.value as "light" | "dark";
    applyStage();
  };
  const display = $("display") as HTMLSelectElement;
  display.value = state.display;
  $("exit-display").onclick = () => {
    state.display = "inline";
    display.value = "inline";
    applyStage();
  };
  display.onchange = () => {
    state.display = display.value as McpUiDisplayMode;
    applyStage();
  };
  const locale = $("locale") as HTMLInputElement;
  locale.value = state.locale;
  locale.onchange = () => {
    state.locale = locale.value;
    applyStage();
  };
  const width = $("width") as HTMLSelectElement;
  width.value = String(state.width);
  width.onchange = () => {
    state.width = Number(width.value);
    applyStage();
  };
  for (const name of ["problems", "log", "model"]) {
    $(`tab-${name}`).onclick = () => {
      for (const n of ["problems", "log", "model"]) {
        $(n).hidden = n !== name;
        $(`tab-${n}`).classList.toggle("on", n === name);
      }
    };
  }
}

// Live reload: the preview says when the server restarted or a widget
// changed; the widget renders again with the last input and result.
function listen() {
  const es = new EventSource("api/events");
  es.addEventListener("reload", async () => {
    if (!state.info) {
      // The server was not there when the page opened: now it is.
      await load();
      return;
    }
    try {
      const info = await api<ServerInfo>("server");
      state.info = info;
      if (state.tool) {
        const t = info.tools.find((x) => x.name === state.tool?.name);
        if (t && frame) await mount(t, state.args, state.result);
      }
    } catch (e) {
      report({ kind: "host", message: `reload: ${(e as Error).message}` });
    }
  });
}

// load reads the server's tools and builds the page; false when the
// server did not answer (the problem is shown).
let controlsReady = false;
async function load(): Promise<boolean> {
  let info: ServerInfo;
  try {
    info = await api<ServerInfo>("server");
  } catch (e) {
    report({ kind: "host", message: `the MCP server: ${(e as Error).message}`, hint: check ? undefined : "the page loads the tools when the server is back" });
    return false;
  }
  state.info = info;
  $("server").textContent = `${info.server?.title ?? info.server?.name ?? "?"} ${info.server?.version ?? ""} · ${info.url} · ${info.protocol ?? ""}`;
  if (!controlsReady) {
    controls(info);
    controlsReady = true;
  }
  if (!check) tools(info);
  return true;
}

async function main() {
  if (check) document.body.classList.add("check");
  if (!check) listen();
  if (!(await load())) {
    if (check) report({ kind: "done", message: "no server", mounted: false });
    return;
  }
  if (!check) return;
  const info = state.info as ServerInfo;
  const name = params.get("tool") ?? "";
  const tool = info.tools.find((t) => t.name === name);
  if (!tool) {
    report({ kind: "host", message: `no tool ${JSON.stringify(name)}; the server has ${info.tools.map((t) => t.name).join(", ")}` });
    report({ kind: "done", message: "no tool", mounted: false });
    return;
  }
  let args: JSONObject = {};
  try {
    args = JSON.parse(params.get("args") || "{}");
  } catch (e) {
    report({ kind: "host", message: `--args: ${(e as Error).message}` });
  }
  try {
    await run(tool, args);
  } catch (e) {
    report({ kind: "host", message: (e as Error).message });
  }
  // Wait for content, then a moment more for what the widget does with
  // the result; the run is on the headless browser's virtual clock.
  const wait = Number(params.get("wait") ?? 5000);
  const start = performance.now();
  while (!state.mounted && performance.now() - start < wait) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 500));
  report({ kind: "done", message: state.mounted ? "rendered" : "the widget rendered nothing", mounted: state.mounted, text: state.text });
  document.body.dataset.done = "1";
}

void main();
