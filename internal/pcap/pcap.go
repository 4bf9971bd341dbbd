// Package pcap reads and writes classic libpcap capture files (not pcapng)
// and decodes captured frames down to their UDP payload.
//
// It exists so that lispctl can decode LISP packets from captures and so that
// tests can hand LISP packets to tshark, without a cgo dependency on libpcap.
// The reader never trusts lengths found in the file: every record is bounded
// by MaxCaptureLen, and malformed input yields an error, never a panic.
package pcap

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Link types (LINKTYPE_* values from https://www.tcpdump.org/linktypes.html)
// understood by DecodeUDP.
const (
	LinkTypeNull      = 0   // BSD loopback: 4-byte address family in the writer's byte order
	LinkTypeEthernet  = 1   // Ethernet II, optionally with 802.1Q/802.1ad VLAN tags
	LinkTypeRaw12     = 12  // DLT_RAW as written by old libpcap on most systems: raw IPv4/IPv6
	LinkTypeRaw14     = 14  // DLT_RAW as written by old libpcap on OpenBSD: raw IPv4/IPv6
	LinkTypeRaw       = 101 // raw IPv4/IPv6, the version nibble tells which
	LinkTypeLoop      = 108 // OpenBSD loopback: like LinkTypeNull, but the family is big-endian
	LinkTypeLinuxSLL  = 113 // Linux "cooked" capture (tcpdump -i any)
	LinkTypeIPv4      = 228 // raw IPv4 only
	LinkTypeIPv6      = 229 // raw IPv6 only
	LinkTypeLinuxSLL2 = 276 // Linux "cooked" capture v2
)

// MaxCaptureLen is the largest record the Reader accepts. It is libpcap's
// own maximum snapshot length; the snaplen in the file header is not used as
// a bound because real files carry nonsense there.
const MaxCaptureLen = 256 << 10

// Magic numbers of the file header, as read in the writer's byte order.
const (
	magicMicro = 0xa1b2c3d4
	magicNano  = 0xa1b23c4d
	magicNG    = 0x0a0d0d0a // pcapng Section Header Block, only to give a better error

	fileHeaderLen   = 24
	recordHeaderLen = 16
	writerSnapLen   = 65535
)

// Errors reported by this package. They are returned wrapped, so compare
// them with errors.Is.
var (
	// ErrBadHeader means the input does not start with a valid classic
	// libpcap file header.
	ErrBadHeader = errors.New("pcap: invalid file header")
	// ErrTruncated means the data ended inside a file header, a record, or
	// (from DecodeUDP) inside the lower-layer headers of a frame.
	ErrTruncated = errors.New("pcap: truncated data")
	// ErrRecordTooLong means a record claims more than MaxCaptureLen bytes;
	// it is refused rather than allocated.
	ErrRecordTooLong = errors.New("pcap: record longer than MaxCaptureLen")
)

// RecordError is returned by Reader.Next when a record is unusable. The
// file cannot be resynchronised after one, so every later call to Next
// returns the same error.
type RecordError struct {
	Index  int   // 1-based number of the record, as tshark numbers frames
	Offset int64 // byte offset of the record header in the file
	Err    error // wraps ErrTruncated or ErrRecordTooLong
}

// Error implements error.
func (e *RecordError) Error() string {
	return fmt.Sprintf("pcap: record %d at offset %d: %v", e.Index, e.Offset, e.Err)
}

// Unwrap lets errors.Is see ErrTruncated and ErrRecordTooLong.
func (e *RecordError) Unwrap() error { return e.Err }

// Packet is one record of a capture file.
type Packet struct {
	Time    time.Time // capture time, in UTC
	Data    []byte    // captured bytes; aliases a buffer reused by the next call to Next
	OrigLen int       // length of the packet on the wire, may exceed len(Data)
}

// Reader reads records from a classic libpcap file.
type Reader struct {
	r        *bufio.Reader
	order    binary.ByteOrder
	nano     bool
	linkType uint32
	snapLen  uint32

	hdr    [recordHeaderLen]byte
	buf    []byte // reused between records; never grows past MaxCaptureLen
	index  int
	offset int64
	err    error // sticky: once set, Next always returns it
}

// NewReader reads and validates the file header from r. Both byte orders and
// both microsecond and nanosecond timestamp resolutions are accepted. The
// Reader buffers r itself.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReader(r)
	var h [fileHeaderLen]byte
	if n, err := io.ReadFull(br, h[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: file header is %d bytes, want %d", ErrTruncated, n, fileHeaderLen)
		}
		return nil, err
	}
	rd := &Reader{r: br, offset: fileHeaderLen}
	switch magic := binary.LittleEndian.Uint32(h[:4]); magic {
	case magicMicro:
		rd.order = binary.LittleEndian
	case magicNano:
		rd.order, rd.nano = binary.LittleEndian, true
	default:
		switch binary.BigEndian.Uint32(h[:4]) {
		case magicMicro:
			rd.order = binary.BigEndian
		case magicNano:
			rd.order, rd.nano = binary.BigEndian, true
		case magicNG:
			return nil, fmt.Errorf("%w: this is a pcapng file; convert it with 'editcap -F pcap'", ErrBadHeader)
		default:
			return nil, fmt.Errorf("%w: unknown magic number %#08x", ErrBadHeader, magic)
		}
	}
	// libpcap accepts exactly these versions; anything else is not a file we
	// know how to parse.
	if major, minor := rd.order.Uint16(h[4:6]), rd.order.Uint16(h[6:8]); major != 2 || minor > 4 {
		return nil, fmt.Errorf("%w: unsupported version %d.%d", ErrBadHeader, major, minor)
	}
	// h[8:16] (thiszone, sigfigs) is ignored, as libpcap does: writers put
	// garbage there.
	rd.snapLen = rd.order.Uint32(h[16:20])
	// The upper 16 bits hold FCS-length flags, not the link type.
	rd.linkType = rd.order.Uint32(h[20:24]) & 0xffff
	return rd, nil
}

// LinkType returns the link-layer type of every record in the file (the
// LINKTYPE_* value, without the FCS flags libpcap keeps in the upper bits).
func (r *Reader) LinkType() uint32 { return r.linkType }

// SnapLen returns the snapshot length claimed by the file header. It is
// informational only: it is neither validated nor used to bound records.
func (r *Reader) SnapLen() uint32 { return r.snapLen }

// Next returns the next record. It returns io.EOF after the last complete
// record and a *RecordError if the file ends inside a record or a record is
// implausibly long. Packet.Data is only valid until the next call to Next;
// copy it to keep it.
func (r *Reader) Next() (Packet, error) {
	if r.err != nil {
		return Packet{}, r.err
	}
	p, err := r.next()
	if err != nil {
		if re, ok := err.(*RecordError); ok {
			re.Index, re.Offset = r.index+1, r.offset
		}
		r.err = err
		return Packet{}, err
	}
	r.index++
	r.offset += recordHeaderLen + int64(len(p.Data))
	return p, nil
}

func (r *Reader) next() (Packet, error) {
	n, err := io.ReadFull(r.r, r.hdr[:])
	switch {
	case err == io.EOF:
		return Packet{}, io.EOF
	case err == io.ErrUnexpectedEOF:
		return Packet{}, &RecordError{Err: fmt.Errorf("%w: record header is %d bytes, want %d", ErrTruncated, n, recordHeaderLen)}
	case err != nil:
		return Packet{}, err
	}
	sec := r.order.Uint32(r.hdr[0:4])
	frac := r.order.Uint32(r.hdr[4:8])
	capLen := r.order.Uint32(r.hdr[8:12])
	origLen := r.order.Uint32(r.hdr[12:16])
	if capLen > MaxCaptureLen {
		return Packet{}, &RecordError{Err: fmt.Errorf("%w: %d bytes", ErrRecordTooLong, capLen)}
	}
	if int(capLen) > cap(r.buf) {
		// Grow once to the largest record seen so far; the cap on capLen
		// keeps this bounded whatever the file says.
		r.buf = make([]byte, capLen)
	}
	data := r.buf[:capLen:capLen]
	if n, err := io.ReadFull(r.r, data); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Packet{}, &RecordError{Err: fmt.Errorf("%w: got %d of %d captured bytes", ErrTruncated, n, capLen)}
		}
		return Packet{}, err
	}
	nsec := int64(frac)
	if !r.nano {
		nsec *= 1000
	}
	// The seconds field is unsigned, which makes it good until 2106.
	return Packet{
		Time:    time.Unix(int64(sec), nsec).UTC(),
		Data:    data,
		OrigLen: int(origLen),
	}, nil
}

// Writer writes a classic libpcap file: little-endian, microsecond
// timestamps, snaplen 65535. It does no buffering of its own; wrap the
// destination in a bufio.Writer when writing many packets.
type Writer struct {
	w   io.Writer
	hdr [recordHeaderLen]byte
}

// NewWriter writes the file header for linkType to w and returns a Writer
// for the records.
func NewWriter(w io.Writer, linkType uint32) (*Writer, error) {
	var h [fileHeaderLen]byte
	le := binary.LittleEndian
	le.PutUint32(h[0:4], magicMicro)
	le.PutUint16(h[4:6], 2)
	le.PutUint16(h[6:8], 4)
	// thiszone and sigfigs stay zero.
	le.PutUint32(h[16:20], writerSnapLen)
	le.PutUint32(h[20:24], linkType)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w}, nil
}

// WritePacket writes one record captured at t. Data longer than the
// snaplen is cut to 65535 bytes, with the full length kept as the original
// length, just as a capture would. Times before 1970 or after 2106 do not fit
// the format and are an error.
func (w *Writer) WritePacket(t time.Time, data []byte) error {
	sec := t.Unix()
	if sec < 0 || sec > 1<<32-1 {
		return fmt.Errorf("pcap: time %v does not fit a pcap timestamp", t)
	}
	if uint64(len(data)) > 1<<32-1 {
		return fmt.Errorf("pcap: packet of %d bytes is too long", len(data))
	}
	origLen := len(data)
	if len(data) > writerSnapLen {
		data = data[:writerSnapLen]
	}
	le := binary.LittleEndian
	le.PutUint32(w.hdr[0:4], uint32(sec))
	le.PutUint32(w.hdr[4:8], uint32(t.Nanosecond()/1000))
	le.PutUint32(w.hdr[8:12], uint32(len(data)))
	le.PutUint32(w.hdr[12:16], uint32(origLen))
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return err
	}
	_, err := w.w.Write(data)
	return err
}
