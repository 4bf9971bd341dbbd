package wire

import "encoding/binary"

// reader is a bounds-checked cursor. Offsets in errors are absolute: base is
// the offset of b within the outermost buffer, so nested structures report
// positions a user can find in a hex dump.
type reader struct {
	b    []byte
	off  int
	base int
	msg  string
}

func newReader(b []byte, base int, msg string) reader {
	return reader{b: b, base: base, msg: msg}
}

func (r *reader) fail(field string, err error) error {
	return &DecodeError{Msg: r.msg, Field: field, Offset: r.base + r.off, Err: err}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) need(n int, field string) error {
	if n < 0 || r.remaining() < n {
		return r.fail(field, ErrTruncated)
	}
	return nil
}

func (r *reader) u8(field string) (uint8, error) {
	if err := r.need(1, field); err != nil {
		return 0, err
	}
	v := r.b[r.off]
	r.off++
	return v, nil
}

func (r *reader) u16(field string) (uint16, error) {
	if err := r.need(2, field); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint16(r.b[r.off:])
	r.off += 2
	return v, nil
}

func (r *reader) u32(field string) (uint32, error) {
	if err := r.need(4, field); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v, nil
}

func (r *reader) u64(field string) (uint64, error) {
	if err := r.need(8, field); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint64(r.b[r.off:])
	r.off += 8
	return v, nil
}

// bytes returns a copy of the next n bytes.
func (r *reader) bytes(n int, field string) ([]byte, error) {
	if err := r.need(n, field); err != nil {
		return nil, err
	}
	v := make([]byte, n)
	copy(v, r.b[r.off:])
	r.off += n
	return v, nil
}

// sub returns a reader over the next n bytes and advances past them.
func (r *reader) sub(n int, field, msg string) (reader, error) {
	if err := r.need(n, field); err != nil {
		return reader{}, err
	}
	s := reader{b: r.b[r.off : r.off+n], base: r.base + r.off, msg: msg}
	r.off += n
	return s, nil
}

func (r *reader) done(field string) error {
	if r.off != len(r.b) {
		return r.fail(field, ErrTrailingBytes)
	}
	return nil
}

func put16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func put32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func put64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }
