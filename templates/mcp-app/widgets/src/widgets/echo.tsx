// The echo widget: shows what the echo tool repeated. Hosts render it for
// tool results whose _meta.ui.resourceUri is ui://echo. It also shows the
// MCP Apps API a widget has: the host's context, display modes, calling a
// tool of the server (shout is visible to widgets only), opening a link,
// sending a message, and telling the model what the widget shows.

import type { McpUiHostContext } from "@modelcontextprotocol/ext-apps/react";
import { useEffect, useState } from "react";
import { useHost } from "../lib/host.ts";

export interface EchoResult {
  message: string;
  length: number;
  receivedAt: string;
}

/** What the widget's buttons do; absent outside a host. */
export interface EchoActions {
  shout(): void;
  fullscreen?: () => void;
  sendMessage(): void;
  openDocs(): void;
}

export interface EchoCardProps {
  result?: EchoResult;
  /** The message from the tool's input, shown while the tool runs. */
  pending?: string;
  error?: string;
  cancelled?: boolean;
  /** The shout tool's answer, once asked. */
  shouted?: string;
  context?: McpUiHostContext;
  actions?: EchoActions;
}

/** EchoCard is the widget's view, a plain function of its props (see test/echo.test.tsx). */
export function EchoCard({ result, pending, error, cancelled, shouted, context, actions }: EchoCardProps) {
  if (error || cancelled) {
    return (
      <section className="card">
        <h1>Echo</h1>
        <p className="message error">{error ?? "The tool call was cancelled."}</p>
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
      {shouted && <p className="message shouted">{shouted}</p>}
      <p className="meta">
        <strong>{result.length}</strong> characters · received {new Date(result.receivedAt).toLocaleTimeString()}
      </p>
      {actions && (
        <div className="actions">
          <button type="button" onClick={actions.shout}>
            Shout it
          </button>
          {actions.fullscreen && (
            <button type="button" onClick={actions.fullscreen}>
              Fullscreen
            </button>
          )}
          <button type="button" onClick={actions.sendMessage}>
            Say it back
          </button>
          <button type="button" onClick={actions.openDocs}>
            About MCP Apps
          </button>
        </div>
      )}
      {context && <p className="meta context">{describe(context)}</p>}
    </section>
  );
}

/** describe is the host's context in a few words. */
export function describe(c: McpUiHostContext): string {
  const parts = [c.theme && `${c.theme} theme`, c.locale, c.displayMode && `${c.displayMode} mode`];
  const d = c.containerDimensions as { width?: number; maxWidth?: number } | undefined;
  const width = d?.width ?? d?.maxWidth;
  if (width) parts.push(`${width}px wide`);
  return parts.filter(Boolean).join(" · ");
}

/**
 * fixtures are the states the gallery (npm run gallery) shows, in light and
 * dark, and that test/gallery.test.tsx checks for accessibility.
 */
export const fixtures: { name: string; props: EchoCardProps }[] = [
  { name: "waiting", props: { pending: "Hello from the host" } },
  {
    name: "result",
    props: {
      result: { message: "Hello from the host", length: 19, receivedAt: "2026-01-02T03:04:05Z" },
      context: { theme: "light", locale: "en-US", displayMode: "inline", containerDimensions: { maxWidth: 640 } },
      actions: { shout() {}, fullscreen() {}, sendMessage() {}, openDocs() {} },
    },
  },
  {
    name: "shouted",
    props: { result: { message: "hey", length: 3, receivedAt: "2026-01-02T03:04:05Z" }, shouted: "HEY" },
  },
  { name: "error", props: { error: "The echo tool failed." } },
  { name: "cancelled", props: { cancelled: true } },
];

/** View renders the widget from its props, for the gallery. */
export const View = EchoCard;

export default function Echo() {
  const host = useHost<EchoResult>("echo");
  const [shouted, setShouted] = useState<string>();
  const { app, result } = host;
  // Tell the model what the widget shows, once there is something.
  useEffect(() => {
    if (!app || !result) return;
    void app.updateModelContext({
      content: [{ type: "text", text: `The echo widget shows the message "${result.message}".` }],
      structuredContent: { ...result },
    });
  }, [app, result]);
  const pending = host.standalone
    ? "Preview: this widget shows the echo tool's result when a host such as ChatGPT or Claude calls it."
    : typeof host.input?.message === "string"
      ? host.input.message
      : undefined;
  const error = host.error?.message ?? (host.raw?.isError ? "The echo tool failed." : undefined);
  const modes = host.context?.availableDisplayModes ?? [];
  const actions: EchoActions | undefined =
    app && result && !host.standalone
      ? {
          shout: () => {
            app.callServerTool({ name: "shout", arguments: { message: result.message } }).then(
              (r) => setShouted((r.structuredContent as { message?: string } | undefined)?.message),
              (err: Error) => setShouted(`shout failed: ${err.message}`),
            );
          },
          fullscreen: modes.includes("fullscreen")
            ? () => void app.requestDisplayMode({ mode: "fullscreen" })
            : undefined,
          sendMessage: () => void app.sendMessage({ role: "user", content: [{ type: "text", text: result.message }] }),
          openDocs: () => void app.openLink({ url: "https://modelcontextprotocol.io/extensions/apps/overview" }),
        }
      : undefined;
  return (
    <EchoCard
      result={result}
      pending={pending}
      error={error}
      cancelled={host.cancelled}
      shouted={shouted}
      context={host.context}
      actions={actions}
    />
  );
}
