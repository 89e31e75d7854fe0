import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "@modelcontextprotocol/client";
import { InMemoryTransport } from "@modelcontextprotocol/server";
import { createServer } from "../src/server.js";
import { countWords } from "../src/tools.js";

async function connect() {
  const server = createServer({ kind: "dev", devUrl: "http://127.0.0.1:9" });
  const client = new Client({ name: "tools-test", version: "1.0.0" });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await Promise.all([server.connect(a), client.connect(b)]);
  return { client, close: () => Promise.all([client.close(), server.close()]) };
}

test("countWords", () => {
  assert.deepEqual(countWords(""), { words: 0, characters: 0, lines: 0 });
  assert.deepEqual(countWords("  hello   wide\nworld "), { words: 3, characters: 21, lines: 2 });
  assert.deepEqual(countWords("héllo 👋"), { words: 2, characters: 7, lines: 1 });
});

test("echo returns the message as text and structured content", async () => {
  const { client, close } = await connect();
  try {
    const result = await client.callTool({ name: "echo", arguments: { message: "hi there" } });
    assert.equal(result.isError, undefined);
    assert.deepEqual(result.content, [{ type: "text", text: "hi there" }]);
    const out = result.structuredContent as { message: string; length: number; receivedAt: string };
    assert.equal(out.message, "hi there");
    assert.equal(out.length, 8);
    assert.ok(!Number.isNaN(Date.parse(out.receivedAt)));
  } finally {
    await close();
  }
});

test("echo validates its input", async () => {
  const { client, close } = await connect();
  try {
    const result = await client.callTool({ name: "echo", arguments: { message: "" } });
    assert.equal(result.isError, true);
    const text = (result.content as { text: string }[])[0]?.text ?? "";
    assert.match(text, /message/);
  } finally {
    await close();
  }
});

test("tools are listed with their widget binding", async () => {
  const { client, close } = await connect();
  try {
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    assert.deepEqual([...byName.keys()].sort(), ["count_words", "echo", "shout"]);
    // shout is for the widget: visible to the app only, with no view of its own.
    assert.deepEqual(byName.get("shout")?._meta?.ui, { visibility: ["app"] });
    const loud = await client.callTool({ name: "shout", arguments: { message: "hey" } });
    assert.deepEqual(loud.structuredContent, { message: "HEY" });
    const ui = byName.get("echo")?._meta?.ui as { resourceUri?: string } | undefined;
    assert.equal(ui?.resourceUri, "ui://echo");
    assert.equal(byName.get("count_words")?._meta?.ui, undefined);
    const counted = await client.callTool({ name: "count_words", arguments: { text: "one two three" } });
    assert.deepEqual(counted.structuredContent, { words: 3, characters: 13, lines: 1 });
  } finally {
    await close();
  }
});
