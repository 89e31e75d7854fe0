package mcpwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Message is what an intermediary decides on in a JSON-RPC message: its
// id, method and params, read the way every app would read them or not
// at all.
type Message struct {
	ID     json.RawMessage // nil when absent
	Method *string         // nil when absent
	Params json.RawMessage
}

// wireKeys are the keys of a JSON-RPC message and of the MCP params the
// relay decides on. A key that differs from one of them only by case (or
// by Unicode case folding, as encoding/json's struct decoding matches
// keys) is read as that key by some apps and ignored by others, so a
// message carrying one is refused.
var wireKeys = []string{"jsonrpc", "id", "method", "params", "result", "error"}

// paramKeys are the params keys the relay decides on.
var paramKeys = []string{"name", "arguments", "uri"}

// Decode reads one JSON-RPC message strictly: an object whose keys are
// unique and none of which differs only by case from a JSON-RPC key, so
// that JavaScript's JSON.parse (last of repeated keys), encoding/json's
// struct decoding (keys matched without regard to case) and a map read by
// exact key all see the same method, id and params. The params object,
// when there is one, is held to the same rules.
func Decode(raw []byte) (Message, error) {
	var m Message
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return m, errors.New("a JSON-RPC message is an object")
	}
	obj, err := strictObject(raw, wireKeys)
	if err != nil {
		return m, err
	}
	m.ID, m.Params = obj["id"], obj["params"]
	if v, ok := obj["method"]; ok {
		var method string
		if err := json.Unmarshal(v, &method); err != nil {
			return m, errors.New("method is not a string")
		}
		m.Method = &method
	}
	if p := bytes.TrimSpace(m.Params); len(p) > 0 && p[0] == '{' {
		if _, err := strictObject(p, paramKeys); err != nil {
			return m, fmt.Errorf("params: %w", err)
		}
	}
	return m, nil
}

// strictObject reads a JSON object's members, refusing repeated keys and
// keys that fold to one of known without being it.
func strictObject(raw []byte, known []string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	obj := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := t.(string) // an object's member always starts with its key
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("the key %q is repeated (apps differ on which one counts)", key)
		}
		for _, k := range known {
			if key != k && strings.EqualFold(key, k) {
				return nil, fmt.Errorf("the key %q differs from %q only by case (apps differ on whether it counts)", key, k)
			}
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	// Only space may follow: JSON.parse and encoding/json refuse
	// anything else (a stray "}" too, which the decoder's More and Token
	// do not report).
	if len(bytes.TrimSpace(raw[dec.InputOffset():])) > 0 {
		return nil, errors.New("data after the object")
	}
	return obj, nil
}

// maxExactInt is the largest integer every JSON reader holds exactly
// (2^53: JavaScript's numbers are float64).
const maxExactInt = 1 << 53

// IDKey is a JSON-RPC id by its decoded value, so a request and its answer
// match whatever spelling each uses ("\u0031" and "1" are one string id,
// 1, 1.0 and 1e0 one number id). ok is false for an id that is absent,
// null, not a string or number, or a number that is not an integer every
// reader holds exactly: the relay cannot tell which answer is its.
func IDKey(id json.RawMessage) (key string, ok bool) {
	id = bytes.TrimSpace(id)
	if len(id) == 0 {
		return "", false
	}
	switch id[0] {
	case '"':
		var s string
		if json.Unmarshal(id, &s) != nil {
			return "", false
		}
		return "s:" + s, true
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if n, err := strconv.ParseInt(string(id), 10, 64); err == nil {
			if n > maxExactInt || n < -maxExactInt {
				return "", false
			}
			return "n:" + strconv.FormatInt(n, 10), true
		}
		// 1.0, 1e0: an integer by value, strictly inside the exact range
		// (a value rounded to 2^53 may have been another integer).
		f, err := strconv.ParseFloat(string(id), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) >= maxExactInt {
			return "", false
		}
		return "n:" + strconv.FormatInt(int64(f), 10), true
	}
	return "", false
}
