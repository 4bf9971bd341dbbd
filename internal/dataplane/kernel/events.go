//go:build linux

package kernel

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"

	"github.com/cilium/ebpf/ringbuf"
)

// eventLen is sizeof(struct decap_event): outer[16], inner[16], iid, pad.
const eventLen = 40

// readEvents hands the program's decapsulation samples to the control
// plane (the userspace engine's Decapsulated hook, which feeds the SMR
// targets) until Close.
func (p *Path) readEvents() {
	var rec ringbuf.Record
	for {
		if err := p.rb.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, ringbuf.ErrClosed) {
				return
			}
			continue
		}
		if len(rec.RawSample) < eventLen || p.cfg.Hooks == nil {
			continue
		}
		b := rec.RawSample
		outer := netip.AddrFrom16([16]byte(b[0:16])).Unmap()
		inner := netip.AddrFrom16([16]byte(b[16:32])).Unmap()
		iid := binary.NativeEndian.Uint32(b[32:36])
		p.cfg.Hooks.Decapsulated(outer, iid, inner)
	}
}
