package control

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/lispd/lispd/wire"
)

// TestDropReasonLabels: every reason has a label of its own; the daemon
// counts drops under these, so two alike would merge two counters.
func TestDropReasonLabels(t *testing.T) {
	seen := map[string]DropReason{}
	for r := Handled; r < NumDropReasons; r++ {
		l := r.String()
		if l == "" {
			t.Errorf("drop reason %d has no label", r)
		}
		if o, dup := seen[l]; dup {
			t.Errorf("drop reasons %d and %d share the label %q", o, r, l)
		}
		seen[l] = r
	}
	if got := NumDropReasons.String(); got != "drop-reason-"+strconv.Itoa(int(NumDropReasons)) {
		t.Errorf("out of range: %q", got)
	}
}

// TestMux: a handler per message type, none for the others, and a second
// registration of a type refused.
func TestMux(t *testing.T) {
	var m Mux
	var got []wire.MessageType
	h := func(r *Request, out Sender) DropReason {
		got = append(got, r.Msg.Type())
		out.Send([]byte("ok"), r.Local.Addr(), r.Src)
		return Handled
	}
	m.Handle(wire.TypeMapRegister, h)
	m.Handle(wire.TypeECM, h)
	var sent int
	out := SenderFunc(func([]byte, netip.Addr, netip.AddrPort) { sent++ })
	for _, msg := range []wire.Message{&wire.MapRegister{}, &wire.ECM{}} {
		if h := m.Handler(msg.Type()); h == nil || h(&Request{Msg: msg}, out) != Handled {
			t.Fatalf("%s: not handled", msg.Type())
		}
	}
	if len(got) != 2 || got[0] != wire.TypeMapRegister || got[1] != wire.TypeECM || sent != 2 {
		t.Errorf("handled %v, sent %d", got, sent)
	}
	for _, typ := range []wire.MessageType{wire.TypeMapRequest, wire.TypeMapReply, 15, 16, 255} {
		if m.Handler(typ) != nil {
			t.Errorf("%s: a handler nobody registered", typ)
		}
	}
	for _, typ := range []wire.MessageType{wire.TypeECM, 16} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registering %s accepted", typ)
				}
			}()
			m.Handle(typ, h)
		}()
	}
}
