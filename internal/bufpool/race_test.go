//go:build race

package bufpool

// Under the race detector sync.Pool drops a quarter of what it is given
// on purpose, so a thousand rounds allocate about 250 buffers.
const raceEnabled = true
