// Package bufpool is the copy-buffer pool of pomdev's reverse proxies (the
// relay's HTTP front and the tunnel's local end). Without one,
// httputil.ReverseProxy allocates 32 KiB for every response it copies,
// which was 80% of the tunnel client's allocations under load.
package bufpool

import (
	"net/http/httputil"
	"sync"
)

// Size of the buffers: httputil.ReverseProxy's own.
const Size = 32 << 10

type pool struct{ p sync.Pool }

func (p *pool) Get() []byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, Size)
}

func (p *pool) Put(b []byte) {
	if cap(b) < Size {
		return
	}
	b = b[:Size]
	p.p.Put(&b)
}

// Proxy is shared by every reverse proxy in the process.
var Proxy httputil.BufferPool = &pool{}
