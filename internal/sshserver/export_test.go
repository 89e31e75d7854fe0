package sshserver

// SetRekeyBytes lowers the rekey threshold for a test and returns a func
// that restores it.
func SetRekeyBytes(n uint64) func() {
	old := rekeyBytes
	rekeyBytes = n
	return func() { rekeyBytes = old }
}

// KexCount is how many key exchanges c completed.
func KexCount(c *Conn) int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.kexCount
}
