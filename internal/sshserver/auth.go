package sshserver

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"
)

const (
	methodPublicKey = "publickey"
	methodKbdInt    = "keyboard-interactive"
)

// algoFits says whether a public key algorithm name goes with a key.
func algoFits(algo string, key ssh.PublicKey) bool {
	switch key.Type() {
	case ssh.KeyAlgoRSA:
		return algo == ssh.KeyAlgoRSA || algo == ssh.KeyAlgoRSASHA256 || algo == ssh.KeyAlgoRSASHA512
	default:
		return algo == key.Type()
	}
}

// authenticate runs the ssh-userauth service (RFC 4252) until the client
// is in.
func (c *Conn) authenticate() error {
	p, err := c.readMsg()
	if err != nil {
		return err
	}
	r := parser{b: p[1:]}
	if p[0] != msgServiceRequest || r.string() != "ssh-userauth" {
		return c.fail(disconnectServiceNotAvailable, "expected the ssh-userauth service")
	}
	if err := c.send(appendString([]byte{msgServiceAccept}, "ssh-userauth")); err != nil {
		return err
	}

	maxTries := c.cfg.MaxAuthTries
	if maxTries <= 0 {
		maxTries = 6
	}
	var (
		failures  int
		decided   []byte // the key blob the decision is about
		decision  error
		partial   *Partial
		partialOn ssh.PublicKey
	)
	decide := func(user string, blob []byte, key ssh.PublicKey) error {
		if !bytes.Equal(decided, blob) {
			decided, decision = bytes.Clone(blob), c.cfg.PublicKey(c.nc.RemoteAddr(), user, key)
		}
		return decision
	}
	methods := methodPublicKey
	failure := func(isPartial bool) error {
		f := appendString([]byte{msgUserAuthFailure}, methods)
		return c.send(appendBool(f, isPartial))
	}
	counted := func() error {
		failures++
		if failures >= maxTries {
			_ = c.fail(disconnectNoMoreAuthMethods, "too many authentication failures")
			return ErrNoAuth
		}
		return failure(false)
	}

	for {
		p, err := c.readMsg()
		if err != nil {
			return err
		}
		if p[0] != msgUserAuthRequest {
			return c.fail(disconnectProtocolError, fmt.Sprintf("expected an authentication request, got message %d", p[0]))
		}
		r := parser{b: p[1:]}
		user, service, method := r.string(), r.string(), r.string()
		if !r.ok() {
			return c.fail(disconnectProtocolError, "malformed authentication request")
		}
		if service != "ssh-connection" {
			return c.fail(disconnectServiceNotAvailable, "unknown service "+service)
		}
		switch {
		case method == methodPublicKey && partial == nil:
			signed := r.bool()
			algo := r.string()
			blob := r.bytes()
			var sigBytes []byte
			if signed {
				sigBytes = r.bytes()
			}
			if !r.done() {
				return c.fail(disconnectProtocolError, "malformed publickey request")
			}
			// The parsed key may alias its input: keep it out of the
			// read buffer, which the next packet reuses.
			blob = bytes.Clone(blob)
			key, err := ssh.ParsePublicKey(blob)
			if err != nil || !algoFits(algo, key) {
				if err := counted(); err != nil {
					return err
				}
				continue
			}
			if _, isCert := key.(*ssh.Certificate); isCert {
				if err := failure(false); err != nil {
					return err
				}
				continue
			}
			verdict := decide(user, blob, key)
			var isPartial *Partial
			if verdict != nil && !errors.As(verdict, &isPartial) {
				if err := counted(); err != nil {
					return err
				}
				continue
			}
			if !signed {
				ok := appendString([]byte{msgUserAuthPKOK}, algo)
				if err := c.send(appendString(ok, blob)); err != nil {
					return err
				}
				continue
			}
			sr := parser{b: sigBytes}
			sig := &ssh.Signature{Format: sr.string(), Blob: sr.bytes(), Rest: sr.rest()}
			if !sr.ok() || sig.Format != algo {
				if err := counted(); err != nil {
					return err
				}
				continue
			}
			data := appendString(nil, c.sessionID)
			data = append(data, msgUserAuthRequest)
			data = appendString(data, user)
			data = appendString(data, service)
			data = appendString(data, methodPublicKey)
			data = appendBool(data, true)
			data = appendString(data, algo)
			data = appendString(data, blob)
			if key.Verify(data, sig) != nil {
				if err := counted(); err != nil {
					return err
				}
				continue
			}
			if isPartial != nil {
				partial, partialOn = isPartial, key
				methods = methodKbdInt
				if err := failure(true); err != nil {
					return err
				}
				continue
			}
			c.user, c.key = user, key
			return c.send([]byte{msgUserAuthSuccess})

		case method == methodKbdInt && partial != nil:
			if err := partial.KeyboardInteractive(c.challenge); err != nil {
				if errors.Is(err, errChallengeIO) {
					return err
				}
				if err := counted(); err != nil {
					return err
				}
				continue
			}
			c.user, c.key = user, partialOn
			return c.send([]byte{msgUserAuthSuccess})

		default:
			if err := failure(false); err != nil {
				return err
			}
		}
	}
}

var errChallengeIO = errors.New("ssh: keyboard-interactive: connection failed")

// challenge sends one keyboard-interactive INFO_REQUEST and waits for the
// answers.
func (c *Conn) challenge(name, instruction string, questions []string, echos []bool) ([]string, error) {
	p := appendString([]byte{msgUserAuthInfoReq}, name)
	p = appendString(p, instruction)
	p = appendString(p, "")
	p = appendUint32(p, uint32(len(questions)))
	for i, q := range questions {
		p = appendString(p, q)
		p = appendBool(p, i < len(echos) && echos[i])
	}
	if err := c.send(p); err != nil {
		return nil, fmt.Errorf("%w: %v", errChallengeIO, err)
	}
	resp, err := c.readMsg()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errChallengeIO, err)
	}
	if resp[0] != msgUserAuthInfoResp {
		return nil, fmt.Errorf("%w: expected INFO_RESPONSE, got message %d", errChallengeIO, resp[0])
	}
	r := parser{b: resp[1:]}
	n := r.uint32()
	if !r.ok() || int(n) != len(questions) {
		return nil, fmt.Errorf("%w: %d answers to %d questions", errChallengeIO, n, len(questions))
	}
	answers := make([]string, n)
	for i := range answers {
		answers[i] = r.string()
	}
	if !r.done() {
		return nil, fmt.Errorf("%w: malformed INFO_RESPONSE", errChallengeIO)
	}
	return answers, nil
}
