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
