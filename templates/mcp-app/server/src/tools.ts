// The app's tools. Each tool that has a widget names it in
// _meta.ui.resourceUri; the widget itself is registered in widgets.ts.

import { registerAppTool } from "@modelcontextprotocol/ext-apps/server";
import type { McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";

export function registerTools(server: McpServer): void {
  // echo repeats a message back and shows it in the echo widget.
  registerAppTool(
    server,
    "echo",
    {
      title: "Echo",
      description: "Repeat a message back to the user and show it in a card. Use it to test that the app works.",
      inputSchema: z.object({
        message: z.string().min(1).max(2000).describe("The message to repeat"),
      }),
      outputSchema: z.object({
        message: z.string(),
        length: z.number().int(),
        receivedAt: z.string(),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
      _meta: { ui: { resourceUri: "ui://echo" } },
    },
    async ({ message }) => {
      const result = { message, length: [...message].length, receivedAt: new Date().toISOString() };
      return {
        content: [{ type: "text", text: message }],
        structuredContent: result,
      };
    },
  );

  // shout is for the echo widget only (visibility ["app"]): the model never
  // sees it, the widget calls it with callServerTool.
  registerAppTool(
    server,
    "shout",
    {
      title: "Shout",
      description: "Upper-case a message (called by the echo widget).",
      inputSchema: z.object({ message: z.string().max(2000) }),
      outputSchema: z.object({ message: z.string() }),
      annotations: { readOnlyHint: true, openWorldHint: false },
      _meta: { ui: { visibility: ["app"] } },
    },
    async ({ message }) => {
      const loud = message.toUpperCase();
      return { content: [{ type: "text", text: loud }], structuredContent: { message: loud } };
    },
  );

  // count_words has no widget: hosts show its text result as they like.
  server.registerTool(
    "count_words",
    {
      title: "Count words",
      description: "Count the words, characters and lines of a text.",
      inputSchema: z.object({
        text: z.string().max(100_000).describe("The text to count"),
      }),
      outputSchema: z.object({
        words: z.number().int(),
        characters: z.number().int(),
        lines: z.number().int(),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async ({ text }) => {
      const result = countWords(text);
      return {
        content: [
          { type: "text", text: `${result.words} words, ${result.characters} characters, ${result.lines} lines` },
        ],
        structuredContent: { ...result },
      };
    },
  );
}

export function countWords(text: string): { words: number; characters: number; lines: number } {
  const trimmed = text.trim();
  return {
    words: trimmed === "" ? 0 : trimmed.split(/\s+/u).length,
    characters: [...text].length,
    lines: text === "" ? 0 : text.split(/\r?\n/).length,
  };
}
