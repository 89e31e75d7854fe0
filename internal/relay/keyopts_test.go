package relay

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestParseKeyOptions(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		err  string
	}{
		{[]string{`from="10.0.0.0/8,!10.1.2.3,192.168.*"`}, ""},
		{[]string{"restrict", "port-forwarding"}, ""},
		{[]string{`permitlisten="myapp:80"`, `permitlisten="0"`, `permitlisten="*:*"`}, ""},
		{[]string{`expiry-time="20301231"`, "no-agent-forwarding", "no-X11-forwarding", `permitopen="x:1"`}, ""},
		{[]string{`command="/bin/sh"`}, "option command is not supported"},
		{[]string{`environment="A=B"`}, "option environment is not supported"},
		{[]string{"cert-authority"}, "not supported"},
		{[]string{`from="10.0.0.0/33"`}, "not a CIDR"},
		{[]string{`from="[ab]"`}, "only * and ?"},
		{[]string{`permitlisten="x:http"`}, "a number or *"},
		{[]string{`expiry-time="tomorrow"`}, "YYYYMMDD"},
		{[]string{"from=10.0.0.1"}, "double quotes"},
	} {
		_, err := parseKeyOptions(tc.opts)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %v, want %q", tc.opts, err, tc.err)
		}
	}
}

func TestKeyOptionsMatch(t *testing.T) {
	ko, _ := parseKeyOptions([]string{`from="10.0.0.0/8,!10.1.2.3,192.168.1.?,::1"`})
	for ip, want := range map[string]bool{"10.9.9.9": true, "10.1.2.3": false, "192.168.1.7": true, "192.168.1.70": false, "::1": true, "172.16.0.1": false} {
		if got := ko.allowsFrom(net.ParseIP(ip)); got != want {
			t.Errorf("from %s: %v", ip, got)
		}
	}
	if !(*keyOptions)(nil).allowsFrom(net.ParseIP("1.2.3.4")) || !(*keyOptions)(nil).allowsListen("localhost", 0) {
		t.Error("no options restrict something")
	}
	restrict, _ := parseKeyOptions([]string{"restrict"})
	if restrict.allowsListen("localhost", 0) || !restrict.noPTY {
		t.Error("restrict allows forwarding or a PTY")
	}
	reopened, _ := parseKeyOptions([]string{"restrict", "port-forwarding"})
	if !reopened.allowsListen("myapp", 80) || !reopened.noPTY {
		t.Error("restrict,port-forwarding")
	}
	pl, _ := parseKeyOptions([]string{`permitlisten="myapp:80"`, `permitlisten="0"`})
	for _, tc := range []struct {
		addr string
		port uint32
		want bool
	}{{"myapp", 80, true}, {"myapp", 443, false}, {"other", 80, false}, {"localhost", 0, true}, {"", 0, true}} {
		if got := pl.allowsListen(tc.addr, tc.port); got != tc.want {
			t.Errorf("listen %s:%d: %v", tc.addr, tc.port, got)
		}
	}
	exp, _ := parseKeyOptions([]string{`expiry-time="20260102Z"`})
	if !exp.expires.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("expiry %v", exp.expires)
	}
}
