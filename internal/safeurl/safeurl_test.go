package safeurl

import "testing"

func TestForBrowser(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://relay.example.com/.pomdev/sign_in?user_code=AB-CD", true},
		{"https://authenticate.pomerium.app/.pomerium/sign_in?user_code=x", true},
		{"http://localhost:8088/.pomdev/sign_in", true},
		{"http://relay.localhost:8088/x", true},
		{"http://127.0.0.1:9/x", true},
		{"http://[::1]:9/x", true},
		{"http://relay.example.com/sign_in", false},
		{"file:///etc/passwd", false},
		{"javascript://x/%0aalert(1)", false},
		{"ssh://host", false},
		{"vscode://x/y", false},
		{"https:///nohost", false},
		{"https:relay.example.com", false},
		{"Visit https://relay.example.com now", false},
		{" https://relay.example.com", false},
		{"-https://x", false},
		{"", false},
		{"https://a\x1b[2J.example.com", false},
	} {
		if err := ForBrowser(tc.url); (err == nil) != tc.ok {
			t.Errorf("ForBrowser(%q) = %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}
