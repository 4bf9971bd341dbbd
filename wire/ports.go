package wire

// The UDP ports of LISP (RFC 9300 §4.1, RFC 9301 §12.1). Every package
// that needs one takes it from here.
const (
	DataPort    = 4341 // encapsulated data packets
	ControlPort = 4342 // control messages
)
