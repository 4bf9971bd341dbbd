package wire

import (
	"errors"
	"fmt"
)

// Sentinel reasons carried by DecodeError and EncodeError; test with errors.Is.
var (
	ErrTruncated     = errors.New("truncated")
	ErrTrailingBytes = errors.New("trailing bytes")
	ErrBadAFI        = errors.New("unsupported AFI")
	ErrBadLength     = errors.New("bad length")
	ErrBadValue      = errors.New("bad value")
	ErrTooDeep       = errors.New("LCAF nesting too deep")
	ErrUnknownType   = errors.New("unknown message type")
	ErrTooMany       = errors.New("too many entries for the field")
	ErrAuthFailed    = errors.New("authentication failed")
	ErrNoKey         = errors.New("no key for algorithm")
	ErrBadAlgorithm  = errors.New("unsupported authentication algorithm")
	ErrNoAuthData    = errors.New("no LISP-SEC authentication data")
)

// DecodeError says where decoding stopped: which message, which field, at
// which byte offset from the start of the buffer given to the decoder.
type DecodeError struct {
	Msg    string // message or structure being decoded, e.g. "Map-Request"
	Field  string // field at fault, e.g. "ITR-RLOC"
	Offset int    // byte offset of the field
	Err    error  // one of the sentinel reasons, possibly wrapped
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("%s: %s at offset %d: %v", e.Msg, e.Field, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError reports a value that cannot be put on the wire.
type EncodeError struct {
	Msg   string
	Field string
	Err   error
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("encode %s: %s: %v", e.Msg, e.Field, e.Err)
}

func (e *EncodeError) Unwrap() error { return e.Err }

func encErr(msg, field string, err error) error {
	return &EncodeError{Msg: msg, Field: field, Err: err}
}
