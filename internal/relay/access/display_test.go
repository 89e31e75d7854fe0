package access

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDisplay(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ChatGPT", "ChatGPT"},
		{"  Chat" + strings.Repeat(" ", 300) + "GPT  ", "Chat GPT"},
		{"a\u202egpj.exe", "a gpj.exe"},
		{"line\nbreak\ttab\x1b[31m", "line break tab [31m"},
		{"", "client-id"},
		{"\u200b\u200b", "client-id"},
	} {
		if got := displayName(tt.in, "client-id"); got != tt.want {
			t.Errorf("displayName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := displayName(strings.Repeat("é", 200), "x")
	if utf8.RuneCountInString(long) != MaxNameRunes || !strings.HasSuffix(long, "…") {
		t.Errorf("a long name: %q", long)
	}
	for _, tt := range []struct{ in, want string }{
		{"https://chatgpt.com/connector/oauth/cb", "https://chatgpt.com"},
		{"https://ChatGPT.com/cb", "https://chatgpt.com"},
		{"https://сhatgpt.com/cb", "https://xn--hatgpt-hrf.com (IDN)"},
		{"https://сhatgpt.com:8443/cb", "https://xn--hatgpt-hrf.com:8443 (IDN)"},
		{"http://127.0.0.1:9/cb", "http://127.0.0.1:9"},
		{"http://[::1]:9/cb", "http://[::1]:9"},
		{"cursor://anysphere.cursor-mcp/oauth/callback", "cursor://anysphere.cursor-mcp"},
		{"::not a uri", "(an invalid redirect URI)"},
	} {
		if got := displayRedirect(tt.in); got != tt.want {
			t.Errorf("displayRedirect(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Who asks: a document's host first, its name a claim, and where name,
// redirect and host disagree, said.
func TestWhoAsks(t *testing.T) {
	doc := func(id, name, redirect string) authRow {
		return authRow{ClientID: id, Data: authData{ClientName: name, RedirectURI: redirect}}
	}
	for _, tc := range []struct {
		row                            authRow
		verified, registered, mismatch string
	}{
		{doc("https://chatgpt.com/oauth/client.json", "ChatGPT", "https://chatgpt.com/connector_platform_oauth_redirect"), "chatgpt.com", "", ""},
		{doc("https://claude.ai/oauth/mcp-oauth-client-metadata", "Claude", "https://claude.ai/api/mcp/auth_callback"), "claude.ai", "", ""},
		{doc("https://vscode.dev/oauth/client-metadata.json", "Visual Studio Code", "http://127.0.0.1:33418/"), "vscode.dev", "", ""},
		{doc("https://auth.openai.com/c.json", "ChatGPT", "https://chatgpt.com/cb"), "auth.openai.com", "", "its name is not that of its host; it returns to chatgpt.com, not to its own host"},
		{doc("https://evil.example/chatgpt.json", "ChatGPT", "https://chatgpt.com/cb"), "evil.example", "", "its name is not that of its host; it returns to chatgpt.com, not to its own host"},
		{doc("https://evil.example/c.json", "ChatGPT", "https://evil.example/cb"), "evil.example", "", "its name is not that of its host"},
		{doc("https://xn--hatgpt-hrf.com/c.json", "ChatGPT", "https://xn--hatgpt-hrf.com/cb"), "xn--hatgpt-hrf.com", "", "its name is not that of its host"},
		{doc("https://сhatgpt.com/c.json", "ChatGPT", "https://сhatgpt.com/cb"), "xn--hatgpt-hrf.com" + IDNMark, "", "its name is not that of its host"},
		{doc("https://apps.example.com/c.json", "https://apps.example.com/c.json", "https://apps.example.com/cb"), "apps.example.com", "", ""},
		{authRow{ClientID: "abc", Data: authData{ClientName: "Claude Code", RedirectURI: "http://localhost:5678/cb", ClientSource: "203.0.113.5"}}, "", "203.0.113.5", ""},
		{authRow{ClientID: "abc", Data: authData{ClientName: "ChatGPT", RedirectURI: "https://evil.example/cb", ClientSource: "203.0.113.5"}}, "", "203.0.113.5", "its name is not that of the host it returns to"},
		{authRow{ClientID: "abc", Data: authData{ClientName: "ChatGPT", RedirectURI: "https://chatgpt.com/cb"}}, "", "an address not recorded", ""},
	} {
		v, r, m := whoAsks(tc.row)
		if v != tc.verified || r != tc.registered || m != tc.mismatch {
			t.Errorf("%s %q: got (%q, %q, %q), want (%q, %q, %q)", tc.row.ClientID, tc.row.Data.ClientName, v, r, m, tc.verified, tc.registered, tc.mismatch)
		}
	}
	// What the owner reads, and the grant's line.
	q := requestOf(doc("https://evil.example/chatgpt.json", "ChatGPT", "https://chatgpt.com/cb"))
	if got := q.App(); !strings.HasPrefix(got, `evil.example (calls itself "ChatGPT"); its name is not that of its host`) {
		t.Errorf("App() = %q", got)
	}
	if got := (Grant{ClientID: "https://evil.example/chatgpt.json", ClientName: "ChatGPT"}).Who(); got != `evil.example (calls itself "ChatGPT")` {
		t.Errorf("grant Who() = %q", got)
	}
	if got := (Grant{ClientID: "abc", ClientName: "ChatGPT"}).Who(); got != `"ChatGPT", registered dynamically, unverified` {
		t.Errorf("grant Who() = %q", got)
	}
}
