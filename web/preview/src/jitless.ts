// zod, which the bridge uses to check messages, compiles parsers with
// eval unless told not to; the page's CSP allows no eval. Imported first,
// so that every schema is built after this.
import { config } from "zod/v4/core";

config({ jitless: true });
