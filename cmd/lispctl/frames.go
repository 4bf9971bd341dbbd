package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lispd/lispd/internal/pcap"
	"github.com/lispd/lispd/internal/render"
	"github.com/lispd/lispd/wire"
)

// frameStats counts what decodeFrames saw, for the closing summary line.
type frameStats struct {
	frames  int   // pcap records read
	control int   // UDP 4342 datagrams
	data    int   // UDP 4341 datagrams
	failed  int   // LISP datagrams that did not decode
	other   int   // frames that are not LISP: other ports, not UDP, fragments
	broken  int   // frames whose link, IP or UDP header could not be parsed
	readErr error // the pcap record error that stopped reading, if any
}

func (st *frameStats) summary() string {
	s := fmt.Sprintf("%s (%d control, %d data), %d failed to decode; %s skipped",
		plural(st.control+st.data, "LISP datagram"), st.control, st.data, st.failed, plural(st.other, "other frame"))
	if st.broken > 0 {
		s += fmt.Sprintf(", %s with unreadable IP/UDP headers skipped", plural(st.broken, "frame"))
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// linkTypeSupported asks DecodeUDP itself, with an empty frame, so that
// the list of link types lives in one place: internal/pcap.
func linkTypeSupported(lt uint32) bool {
	_, err := pcap.DecodeUDP(lt, nil)
	return !errors.Is(err, pcap.ErrUnsupportedLinkType)
}

// decodeFrames decodes every LISP datagram of the capture into sk. A
// broken record stops reading (the format cannot resynchronise) and is
// kept in the stats; the error returned is a failure to write output.
func decodeFrames(pr *pcap.Reader, sk sink) (frameStats, error) {
	var st frameStats
	for {
		pkt, err := pr.Next()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			st.readErr = err
			return st, nil
		}
		st.frames++
		p, ok := decodeFrame(pr.LinkType(), pkt, &st)
		if !ok {
			continue
		}
		p.Frame = st.frames
		if p.Failed() {
			st.failed++
		}
		// p.Raw aliases the reader's buffer: it must be written now,
		// before the next call to Next.
		if err := sk.packet(&p); err != nil {
			return st, err
		}
	}
}

// decodeFrame decodes one frame if it is a LISP datagram; ok is false for
// anything else, which is counted in st.
func decodeFrame(linkType uint32, pkt pcap.Packet, st *frameStats) (render.Packet, bool) {
	dg, err := pcap.DecodeUDP(linkType, pkt.Data)
	if err != nil {
		if errors.Is(err, pcap.ErrNotUDP) {
			st.other++
		} else {
			st.broken++
		}
		return render.Packet{}, false
	}
	var p render.Packet
	switch lispPort(dg.Src.Port(), dg.Dst.Port()) {
	case wire.ControlPort:
		st.control++
		p = render.ControlPacket(dg.Payload)
	case wire.DataPort:
		st.data++
		p = render.DataPacket(dg.Payload)
	default:
		st.other++
		return render.Packet{}, false
	}
	p.Time = timeText(pkt.Time)
	p.Src, p.Dst = dg.Src.String(), dg.Dst.String()
	p.Truncated = dg.Truncated
	return p, true
}

// lispPort says which LISP service a datagram belongs to: the destination
// port when it is a LISP port (requests), else the source port (replies go
// back to the requester's ephemeral port). 0 means not LISP.
func lispPort(src, dst uint16) uint16 {
	for _, p := range [2]uint16{dst, src} {
		if p == wire.ControlPort || p == wire.DataPort {
			return p
		}
	}
	return 0
}

// timeText prints a capture time in UTC, RFC 3339 with the capture's
// precision: microseconds, or nanoseconds when the file has them.
func timeText(t time.Time) string {
	layout := "2006-01-02T15:04:05.000000Z07:00"
	if t.Nanosecond()%1000 != 0 {
		layout = strings.Replace(layout, ".000000", ".000000000", 1)
	}
	return t.UTC().Format(layout)
}
