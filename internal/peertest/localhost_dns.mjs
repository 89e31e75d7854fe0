// *.localhost is this machine, as browsers and pomdev resolve it; the
// system resolver here does not know it. Imported by the test clients, and
// preloaded (node --import) for the conformance suite.
import dns from "node:dns";

const lookup = dns.lookup;
dns.lookup = (host, options, callback) => {
  if (typeof options === "function") [callback, options] = [options, {}];
  if (!host.endsWith(".localhost")) return lookup(host, options, callback);
  if (options?.all) return callback(null, [{ address: "127.0.0.1", family: 4 }]);
  return callback(null, "127.0.0.1", 4);
};
