// The sandbox proxy of `pomdev preview`: the page on the second origin
// that the host page frames. It waits for the widget's HTML
// (ui/notifications/sandbox-resource-ready), renders it in an inner frame
// (srcdoc, so the widget runs under this page's CSP header, which the
// preview's server built from the resource's _meta.ui.csp) and relays
// JSON-RPC messages between the host and the widget, as the MCP Apps
// specification's sandbox proxy does. It also watches the widget for CSP
// violations, errors and an empty root and tells the host.

const RESOURCE_READY = "ui/notifications/sandbox-resource-ready";
const PROXY_READY = "ui/notifications/sandbox-proxy-ready";

// Runs first in the widget's document; reports go to this page as
// {pomdevPreview: report}, never as JSON-RPC.
const watcher = `(function () {
  var post = function (r) { try { parent.postMessage({ pomdevPreview: r }, "*"); } catch (e) {} };
  var blocked = {};
  var text = function (v) {
    if (v instanceof Error) return v.stack || String(v);
    if (typeof v === "string") return v;
    try { return JSON.stringify(v); } catch (e) { return String(v); }
  };
  addEventListener("securitypolicyviolation", function (e) {
    blocked[e.blockedURI] = true;
    post({ kind: "csp", message: "blocked by the CSP (" + e.effectiveDirective + "): " + e.blockedURI, blocked: e.blockedURI, directive: e.effectiveDirective });
  });
  addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) {
      var u = t.src || t.href || "";
      setTimeout(function () { if (!blocked[u]) post({ kind: "error", message: "could not load " + t.tagName.toLowerCase() + " " + (u || "(inline)") }); }, 0);
      return;
    }
    post({ kind: "error", message: "uncaught " + text(e.error || e.message) });
  }, true);
  addEventListener("unhandledrejection", function (e) { post({ kind: "error", message: "unhandled rejection: " + text(e.reason) }); });
  var ce = console.error;
  console.error = function () {
    post({ kind: "console", message: Array.prototype.map.call(arguments, text).join(" ") });
    return ce.apply(console, arguments);
  };
  var mounted = false;
  var check = function () {
    if (mounted || !document.body) return;
    var root = document.getElementById("root") || document.getElementById("app") || document.body;
    var has = false;
    for (var n = root.firstChild; n && !has; n = n.nextSibling) {
      if (n.nodeType === 1 && !/^(SCRIPT|STYLE|TEMPLATE|LINK|META|NOSCRIPT)$/.test(n.tagName)) has = true;
      if (n.nodeType === 3 && /\\S/.test(n.nodeValue)) has = true;
    }
    if (has) { mounted = true; post({ kind: "mounted", message: "rendered into #" + (root.id || "body") }); }
  };
  var pending = false;
  var content = function () {
    pending = false;
    if (document.body) post({ kind: "content", message: (document.body.innerText || "").slice(0, 4000) });
  };
  new MutationObserver(function () {
    check();
    if (!pending) { pending = true; setTimeout(content, 100); }
  }).observe(document, { childList: true, subtree: true, characterData: true });
  addEventListener("DOMContentLoaded", check);
})();`;

// The watcher goes before anything of the widget's, in <head>.
function instrument(html: string): string {
  const tag = `<script>${watcher}</script>`;
  const head = /<head[^>]*>/i.exec(html);
  if (head) return html.slice(0, head.index + head[0].length) + tag + html.slice(head.index + head[0].length);
  const doc = /<html[^>]*>/i.exec(html);
  if (doc) return html.slice(0, doc.index + doc[0].length) + tag + html.slice(doc.index + doc[0].length);
  return tag + html;
}

function allow(p: Record<string, unknown> | undefined): string {
  const out: string[] = [];
  if (p?.camera) out.push("camera");
  if (p?.microphone) out.push("microphone");
  if (p?.geolocation) out.push("geolocation");
  if (p?.clipboardWrite) out.push("clipboard-write");
  return out.join("; ");
}

if (window.self === window.top) {
  document.body.textContent = "This page is the sandbox of pomdev preview; it only works in its frame.";
} else {
  let inner: HTMLIFrameElement | null = null;
  window.addEventListener("message", (e: MessageEvent) => {
    const m = e.data;
    if (e.source === window.parent) {
      if (m?.method === RESOURCE_READY) {
        const p = m.params ?? {};
        inner?.remove();
        inner = document.createElement("iframe");
        inner.setAttribute("sandbox", typeof p.sandbox === "string" ? p.sandbox : "allow-scripts allow-same-origin allow-forms");
        const a = allow(p.permissions);
        if (a) inner.setAttribute("allow", a);
        inner.title = "widget";
        inner.srcdoc = instrument(String(p.html ?? ""));
        document.body.appendChild(inner);
        return;
      }
      inner?.contentWindow?.postMessage(m, "*");
    } else if (inner && e.source === inner.contentWindow) {
      window.parent.postMessage(m, "*");
    }
  });
  window.parent.postMessage({ jsonrpc: "2.0", method: PROXY_READY, params: {} }, "*");
}
