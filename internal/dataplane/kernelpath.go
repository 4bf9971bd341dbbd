package dataplane

import "net/netip"

// What the kernel data path (package dataplane/kernel) shares with the
// engine so that a flow is treated alike whichever path carries a packet
// of it: the same hash, hence the same locator and outer source port.

// Choice is a locator traffic may go to, as the engine compiled it.
type Choice struct {
	RLOC     netip.Addr
	MaxInner int    // largest inner packet that fits the underlay MTU
	Cum      uint32 // cumulative weight, this choice included
}

// Choices compiles locators as SetMapCache does: the usable ones of the
// best usable priority with cumulative weights; a flow with hash h takes
// the first choice whose Cum is above h % total.
func (e *Engine) Choices(locs []Locator) (cs []Choice, total uint32) {
	in, total := e.choose(locs)
	return exportChoices(in), total
}

// PETRChoices is the locator set natively-forward entries go to (the
// PETRs, equal split); nil without PETRs.
func (e *Engine) PETRChoices() (cs []Choice, total uint32) {
	if e.petr == nil {
		return nil, 0
	}
	return exportChoices(e.petr.choices), e.petr.total
}

func exportChoices(in []choice) []Choice {
	cs := make([]Choice, len(in))
	for i, c := range in {
		cs[i] = Choice{RLOC: c.dst, MaxInner: c.maxInner, Cum: c.cum}
	}
	return cs
}

// FlowSeed is the seed of the engine's flow hash.
func (e *Engine) FlowSeed() uint64 { return e.seed }

// OuterSourceAddrs are the outer source addresses (first local RLOC of
// each family).
func (e *Engine) OuterSourceAddrs() (v4, v6 netip.Addr) { return e.src4, e.src6 }

// SourcePorts says how the underlay turns the flow port (srcPortOf) into
// the outer UDP source port on the wire: base + port % n when n > 0 (the
// GSO sockets' fixed ports), the port itself otherwise.
type SourcePorts struct{ Base, N uint16 }
