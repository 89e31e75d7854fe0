import type { App, AppEventMap, McpUiHostContext } from "@modelcontextprotocol/ext-apps/react";
import { useApp, useHostStyles } from "@modelcontextprotocol/ext-apps/react";
import { useState } from "react";

type ToolResult = AppEventMap["toolresult"];

export interface HostState<T> {
  app: App | null;
  connected: boolean;
  /** The page is open on its own (the dev server's preview), not in a host's iframe. */
  standalone: boolean;
  error: Error | null;
  /** The tool's arguments, as soon as the host sends them. */
  input: Record<string, unknown> | undefined;
  /** The tool's structured result, once the tool has run. */
  result: T | undefined;
  /** The whole tool result (content, isError, _meta). */
  raw: ToolResult | undefined;
  /** The host's context: theme, locale, display mode, container size, safe area; kept up to date. */
  context: McpUiHostContext | undefined;
  /** The host cancelled the tool call (the user stopped it). */
  cancelled: boolean;
}

/**
 * useHost connects the widget to the host (through App from
 * @modelcontextprotocol/ext-apps), follows the host's theme and styles, and
 * returns the tool's input and result as they arrive.
 */
export function useHost<T>(name: string): HostState<T> {
  const [input, setInput] = useState<Record<string, unknown>>();
  const [raw, setRaw] = useState<ToolResult>();
  const [context, setContext] = useState<McpUiHostContext>();
  const [cancelled, setCancelled] = useState(false);
  const { app, isConnected, error } = useApp({
    appInfo: { name, version: "0.1.0" },
    capabilities: {},
    onAppCreated: (created) => {
      created.addEventListener("toolinput", (params) => setInput(params.arguments));
      created.addEventListener("toolresult", (params) => setRaw(params));
      created.addEventListener("toolcancelled", () => setCancelled(true));
      // The host sends what changed; keep the rest.
      created.addEventListener("hostcontextchanged", (changed) =>
        setContext((old) => ({ ...(old ?? created.getHostContext()), ...changed })),
      );
    },
  });
  // The context the host gave at connection, until it changes.
  const current = context ?? app?.getHostContext();
  // Host CSS variables, fonts and light/dark theme (data-theme on <html>).
  useHostStyles(app, app?.getHostContext());
  // Outside a host there is nobody to talk to: no error, just a preview.
  const standalone = typeof window !== "undefined" && window.parent === window;
  return {
    app,
    connected: isConnected,
    standalone,
    error: standalone ? null : error,
    input,
    raw,
    result: raw?.structuredContent as T | undefined,
    context: current,
    cancelled,
  };
}
