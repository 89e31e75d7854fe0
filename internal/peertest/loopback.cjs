// Preloaded (node --require) into a server under test: every server of the
// process binds 127.0.0.1, and the first port it listens on is written to
// the file $POMDEV_LISTEN_FILE, so that the test can give it port 0 and
// learn the port rather than guess a free one.
const fs = require("fs");
const net = require("net");
const listen = net.Server.prototype.listen;
let reported = false;
net.Server.prototype.listen = function (...args) {
  this.once("listening", () => {
    const file = process.env.POMDEV_LISTEN_FILE;
    const addr = this.address();
    if (file && !reported && addr && typeof addr === "object") {
      reported = true;
      fs.writeFileSync(file + ".tmp", String(addr.port));
      fs.renameSync(file + ".tmp", file);
    }
  });
  if (typeof args[0] === "number" || typeof args[0] === "string") {
    const cb = args.find((a) => typeof a === "function");
    return listen.call(this, { port: Number(args[0]), host: "127.0.0.1" }, cb);
  }
  if (args[0] && typeof args[0] === "object" && !args[0].path) args[0] = { ...args[0], host: "127.0.0.1" };
  return listen.apply(this, args);
};
