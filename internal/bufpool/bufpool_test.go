package bufpool

import "testing"

func TestReuse(t *testing.T) {
	b := Proxy.Get()
	if len(b) != Size {
		t.Fatalf("len %d, want %d", len(b), Size)
	}
	Proxy.Put(b[:10]) // a shortened slice still goes back whole
	if got := Proxy.Get(); len(got) != Size {
		t.Fatalf("len %d after Put, want %d", len(got), Size)
	}
	Proxy.Put(make([]byte, 10)) // too small: dropped
}

func BenchmarkGetPut(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Proxy.Put(Proxy.Get())
	}
}
