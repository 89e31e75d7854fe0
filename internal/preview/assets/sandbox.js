"use strict";(()=>{var i="ui/notifications/sandbox-resource-ready",s="ui/notifications/sandbox-proxy-ready",a=`(function () {
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
})();`;function c(e){let t=`<script>${a}<\/script>`,n=/<head[^>]*>/i.exec(e);if(n)return e.slice(0,n.index+n[0].length)+t+e.slice(n.index+n[0].length);let o=/<html[^>]*>/i.exec(e);return o?e.slice(0,o.index+o[0].length)+t+e.slice(o.index+o[0].length):t+e}function d(e){let t=[];return e?.camera&&t.push("camera"),e?.microphone&&t.push("microphone"),e?.geolocation&&t.push("geolocation"),e?.clipboardWrite&&t.push("clipboard-write"),t.join("; ")}if(window.self===window.top)document.body.textContent="This page is the sandbox of pomdev preview; it only works in its frame.";else{let e=null;window.addEventListener("message",t=>{let n=t.data;if(t.source===window.parent){if(n?.method===i){let o=n.params??{};e?.remove(),e=document.createElement("iframe"),e.setAttribute("sandbox",typeof o.sandbox=="string"?o.sandbox:"allow-scripts allow-same-origin allow-forms");let r=d(o.permissions);r&&e.setAttribute("allow",r),e.title="widget",e.srcdoc=c(String(o.html??"")),document.body.appendChild(e);return}e?.contentWindow?.postMessage(n,"*")}else e&&t.source===e.contentWindow&&window.parent.postMessage(n,"*")}),window.parent.postMessage({jsonrpc:"2.0",method:s,params:{}},"*")}})();
