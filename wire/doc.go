// Package wire encodes and decodes every LISP message byte-exactly: the data
// plane header (RFC 9300, RFC 9305), the control messages (RFC 9301, RFC 8111,
// RFC 9437 and the NAT-traversal draft), AFI and LCAF addresses (RFC 8060,
// RFC 9306) and the HMAC authentication of Map-Register, Map-Notify and
// Map-Notify-Ack.
//
// The package is pure: bytes in, typed values out, and back. It does no I/O,
// reads no clock and keeps no global state, so the daemon, the CLI and the
// tests share one codec. Decoders never panic on input; every failure is a
// *DecodeError naming the message, the field and the byte offset.
//
// Decoded values never alias the input buffer: a receive buffer may be reused
// as soon as Decode returns. Reserved bits are kept on decode and written back
// on encode, so a decoded foreign message re-encodes to the same bytes.
package wire
