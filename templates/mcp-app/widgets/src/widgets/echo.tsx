// The echo widget: shows what the echo tool repeated. Hosts render it for
// tool results whose _meta.ui.resourceUri is ui://echo.

import { useHost } from "../lib/host.ts";

export interface EchoResult {
  message: string;
  length: number;
  receivedAt: string;
}

export interface EchoCardProps {
  result?: EchoResult;
  /** The message from the tool's input, shown while the tool runs. */
  pending?: string;
  error?: string;
}

/** EchoCard is the widget's view, a plain function of its props (see test/echo.test.tsx). */
export function EchoCard({ result, pending, error }: EchoCardProps) {
  if (error) {
    return (
      <section className="card">
        <h1>Echo</h1>
        <p className="message error">{error}</p>
      </section>
    );
  }
  if (!result) {
    return (
      <section className="card" aria-busy="true">
        <h1>Echo</h1>
        <p className="message">{pending ?? "Waiting for the tool result…"}</p>
      </section>
    );
  }
  return (
    <section className="card">
      <h1>Echo</h1>
      <p className="message">{result.message}</p>
      <p className="meta">
        <strong>{result.length}</strong> characters · received {new Date(result.receivedAt).toLocaleTimeString()}
      </p>
    </section>
  );
}

export default function Echo() {
  const host = useHost<EchoResult>("echo");
  const pending = host.standalone
    ? "Preview: this widget shows the echo tool's result when a host such as ChatGPT or Claude calls it."
    : typeof host.input?.message === "string"
      ? host.input.message
      : undefined;
  const error = host.error?.message ?? (host.raw?.isError ? "The echo tool failed." : undefined);
  return <EchoCard result={host.result} pending={pending} error={error} />;
}
