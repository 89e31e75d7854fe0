//go:build !linux

package supervise

// PortHolder is not implemented outside Linux yet ("" = unknown).
func PortHolder(port int) string { return "" }
