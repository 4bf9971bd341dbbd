package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/lig"
	"github.com/lispd/lispd/wire"
)

// ligOptions are the flags of lispctl lig.
type ligOptions struct {
	mr        string
	iid       uint32
	iidSet    bool
	count     int
	timeout   time.Duration
	source    string
	sourceEID string
	port      uint16
	portSet   bool
	json      bool
}

const ligLong = `Ask a Map-Resolver for the mapping of an EID, like the LISP Internet Groper
(RFC 6835). No lispd needs to run: lig opens its own UDP socket on a random
port and sends a Map-Request for EID/32 (or /128) inside an Encapsulated
Control Message to the Map-Resolver's port 4342. The ITR-RLOC and the inner
IP source are the address given by --source, or else the local address the
kernel uses to reach the Map-Resolver.

lig waits --timeout for a Map-Reply carrying the request's nonce, from
whichever address it comes (Map-Resolver, proxy-replying Map-Server or the
ETR itself), and sends another request, up to --count in all. It prints who
replied, the round-trip time and the mapping: EID prefix, TTL, whether the
answer is authoritative, the action of a negative reply, and each locator
with its priority/weight, multicast priority/weight and state (up when the
R bit is set). The EID may carry an instance ID, as --instance-id N or
written "[N]EID".

--json prints one object: "eid", "instance-id", "map-resolver", "replied-by",
"rtt-ms", "nonce", "attempts" and "records", each with "eid-prefix",
"instance-id", "ttl-minutes", "action", "negative", "authoritative" and
"locators" ("address", "priority", "weight", "m-priority", "m-weight",
"state").

Exit status: 0 for a positive Map-Reply, 1 for a negative one (no
locators), 2 when no Map-Reply came and for usage errors.`

const ligExample = `  lispctl lig 198.51.100.20 --mr 192.0.2.1
  lispctl lig '[1000]198.51.100.20' --mr 192.0.2.1 --count 1 --timeout 1s
  lispctl lig 2001:db8:1::5 --mr 2001:db8::1 --json | jq '.records[0].locators'`

func newLigCmd(s streams) *cobra.Command {
	var o ligOptions
	cmd := &cobra.Command{
		Use:     "lig EID --mr ADDR",
		Short:   "Look up an EID at a Map-Resolver (LISP Internet Groper)",
		Long:    ligLong,
		Example: ligExample,
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.iidSet = cmd.Flags().Changed("instance-id")
			o.portSet = cmd.Flags().Changed("port")
			q, err := o.query(args)
			if err != nil {
				return err
			}
			return o.run(cmd, s, q)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.mr, "mr", "", "Map-Resolver address (required); ADDR:PORT is also accepted")
	f.Uint32Var(&o.iid, "instance-id", 0, "instance ID of the EID (sent in an Instance-ID LCAF)")
	f.IntVarP(&o.count, "count", "c", lig.DefaultCount, "Map-Requests to send before giving up")
	f.DurationVarP(&o.timeout, "timeout", "t", lig.DefaultTimeout, "how long to wait for a Map-Reply to each request")
	f.StringVarP(&o.source, "source", "s", "", "local address to send from, also the ITR-RLOC (default: the one routing picks toward the Map-Resolver)")
	f.StringVar(&o.sourceEID, "source-eid", "", "Source EID to put in the Map-Request (default: none, AFI 0)")
	f.Uint16Var(&o.port, "port", wire.ControlPort, "Map-Resolver UDP port")
	f.BoolVar(&o.json, "json", false, "print the result as a JSON object")
	return cmd
}

// query checks the arguments and builds the lig options.
func (o *ligOptions) query(args []string) (lig.Options, error) {
	var q lig.Options
	if len(args) != 1 {
		return q, cli.Usagef("lig takes one EID, got %d arguments", len(args))
	}
	eid, iid, hasIID, err := parseEID(args[0])
	if err != nil {
		return q, cli.Usagef("EID %q: %v", args[0], err)
	}
	if o.iidSet {
		if hasIID && iid != o.iid {
			return q, cli.Usagef("EID %q has instance ID %d but --instance-id is %d", args[0], iid, o.iid)
		}
		iid, hasIID = o.iid, true
	}
	if o.mr == "" {
		return q, cli.Usagef("--mr ADDR is required: the Map-Resolver to ask")
	}
	mr, err := parseTarget(o.mr, o.port, o.portSet)
	if err != nil {
		return q, cli.Usagef("--mr: %v", err)
	}
	if o.count < 1 {
		return q, cli.Usagef("--count must be at least 1")
	}
	if o.timeout <= 0 {
		return q, cli.Usagef("--timeout must be positive")
	}
	q = lig.Options{EID: eid, InstanceID: iid, HasInstanceID: hasIID, MapResolver: mr, Count: o.count, Timeout: o.timeout}
	if o.source != "" {
		if q.Source, err = netip.ParseAddr(o.source); err != nil {
			return q, cli.Usagef("--source: %v", err)
		}
		if q.Source.Unmap().Is4() != mr.Addr().Is4() {
			return q, cli.Usagef("--source %s is not of the Map-Resolver's address family", o.source)
		}
	}
	if o.sourceEID != "" {
		if q.SourceEID, err = netip.ParseAddr(o.sourceEID); err != nil {
			return q, cli.Usagef("--source-eid: %v", err)
		}
	}
	return q, nil
}

// parseEID reads "ADDR" or "[IID]ADDR".
func parseEID(s string) (netip.Addr, uint32, bool, error) {
	var iid uint32
	has := false
	if rest, ok := strings.CutPrefix(s, "["); ok {
		n, addr, ok := strings.Cut(rest, "]")
		if !ok {
			return netip.Addr{}, 0, false, errors.New(`want ADDR or "[IID]ADDR"`)
		}
		v, err := strconv.ParseUint(n, 10, 32)
		if err != nil {
			return netip.Addr{}, 0, false, fmt.Errorf("instance ID %q: not a number below 2^32", n)
		}
		iid, has, s = uint32(v), true, addr
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, 0, false, fmt.Errorf("not an IP address (names are not resolved)")
	}
	if a.Zone() != "" {
		return netip.Addr{}, 0, false, errors.New("an EID has no zone")
	}
	return a.Unmap(), iid, has, nil
}

// parseTarget reads ADDR, ADDR:PORT or [ADDR]:PORT; port applies to a bare
// ADDR, and must agree with an explicit one when portSet.
func parseTarget(s string, port uint16, portSet bool) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if portSet && ap.Port() != port {
			return netip.AddrPort{}, fmt.Errorf("%s names port %d, --port says %d", s, ap.Port(), port)
		}
		if ap.Port() == 0 {
			return netip.AddrPort{}, errors.New("port 0")
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an address or ADDR:PORT", s)
	}
	if port == 0 {
		return netip.AddrPort{}, errors.New("port 0")
	}
	if a.Unmap().IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("%s is the unspecified address", a)
	}
	return netip.AddrPortFrom(a.Unmap(), port), nil
}

func (o *ligOptions) run(cmd *cobra.Command, s streams, q lig.Options) error {
	out := bufio.NewWriter(s.out)
	eidText := q.EID.String()
	if q.HasInstanceID {
		eidText = fmt.Sprintf("[%d]%s", q.InstanceID, q.EID)
	}
	var werr error
	if !o.json {
		q.OnSend = func(int, uint64) {
			// Flushed at once: the user watches the attempts go by.
			fmt.Fprintf(out, "Send map-request to %s for %s ...\n", q.MapResolver.Addr(), eidText)
			if err := out.Flush(); err != nil && werr == nil {
				werr = err
			}
		}
	}
	res, err := lig.Query(cmd.Context(), q)
	if werr != nil {
		return outputError(werr)
	}
	if err != nil {
		// No answer, or no socket to ask from: either way, no mapping.
		return &cli.Error{Code: cli.ExitUsage, Err: err}
	}
	if o.json {
		b, err := marshalObject(ligJSON(res))
		if err == nil {
			_, err = fmt.Fprintf(out, "%s\n", b)
		}
		if err != nil {
			return outputError(err)
		}
	} else if err := writeLigText(out, res); err != nil {
		return outputError(err)
	}
	if err := out.Flush(); err != nil {
		return outputError(err)
	}
	if res.Negative() {
		return &cli.Error{Code: cli.ExitFailed}
	}
	return nil
}

// ligResult is the --json object.
type ligResult struct {
	EID         string      `json:"eid"`
	InstanceID  uint32      `json:"instance-id"`
	MapResolver string      `json:"map-resolver"`
	Port        uint16      `json:"port"`
	RepliedBy   string      `json:"replied-by"`
	RTTms       float64     `json:"rtt-ms"`
	Nonce       string      `json:"nonce"`
	Attempts    int         `json:"attempts"`
	Records     []ligRecord `json:"records"`
}

type ligRecord struct {
	EIDPrefix     string       `json:"eid-prefix"`
	InstanceID    uint32       `json:"instance-id"`
	TTLMinutes    uint32       `json:"ttl-minutes"`
	Action        string       `json:"action"`
	Negative      bool         `json:"negative"`
	Authoritative bool         `json:"authoritative"`
	MapVersion    uint16       `json:"map-version"`
	Locators      []ligLocator `json:"locators"`
}

type ligLocator struct {
	Address   string `json:"address"`
	Priority  uint8  `json:"priority"`
	Weight    uint8  `json:"weight"`
	MPriority uint8  `json:"m-priority"`
	MWeight   uint8  `json:"m-weight"`
	State     string `json:"state"` // "up" when the R bit is set, else "down"
}

func ligJSON(r *lig.Result) ligResult {
	j := ligResult{EID: r.EID.String(), InstanceID: r.InstanceID, MapResolver: r.MapResolver.Addr().String(),
		Port: r.MapResolver.Port(), RepliedBy: r.RepliedBy.Addr().String(), RTTms: rttMS(r.RTT),
		Nonce: fmt.Sprintf("%#016x", r.Nonce), Attempts: r.Attempts, Records: []ligRecord{}}
	for i := range r.Reply.Records {
		rec := &r.Reply.Records[i]
		iid, prefix := recordPrefix(rec)
		lr := ligRecord{EIDPrefix: prefix, InstanceID: iid, TTLMinutes: rec.TTL, Action: rec.Action.String(),
			Negative: len(rec.Locators) == 0, Authoritative: rec.Authoritative, MapVersion: rec.MapVersion,
			Locators: []ligLocator{}}
		for k := range rec.Locators {
			l := &rec.Locators[k]
			lr.Locators = append(lr.Locators, ligLocator{Address: l.Address.String(), Priority: l.Priority,
				Weight: l.Weight, MPriority: l.MPriority, MWeight: l.MWeight, State: locatorState(l)})
		}
		j.Records = append(j.Records, lr)
	}
	return j
}

// rttMS is the RTT in milliseconds, to the microsecond.
func rttMS(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// recordPrefix splits a record's EID into instance ID and prefix text.
func recordPrefix(rec *wire.EIDRecord) (uint32, string) {
	if iid, p, ok := rec.Prefix(); ok {
		return iid, p.String()
	}
	iid, in, _ := rec.EID.InstanceID()
	return iid, in.String()
}

func locatorState(l *wire.Locator) string {
	if l.Reachable() {
		return "up"
	}
	return "down"
}

// writeLigText prints the reply as routers do.
func writeLigText(w io.Writer, r *lig.Result) error {
	rtt := fmt.Sprintf("%.2f", float64(r.RTT)/1e6)
	if r.RTT < 100*time.Microsecond {
		rtt = fmt.Sprintf("%.3f", float64(r.RTT)/1e6)
	}
	if _, err := fmt.Fprintf(w, "Received map-reply from %s with rtt %s ms\n", r.RepliedBy.Addr(), rtt); err != nil {
		return err
	}
	if len(r.Reply.Records) == 0 {
		_, err := fmt.Fprintln(w, "\nThe Map-Reply holds no mapping record.")
		return err
	}
	for i := range r.Reply.Records {
		rec := &r.Reply.Records[i]
		auth := "not authoritative"
		if rec.Authoritative {
			auth = "authoritative"
		}
		kind := "action " + rec.Action.String()
		if len(rec.Locators) == 0 {
			kind = "negative, " + kind
		}
		if _, err := fmt.Fprintf(w, "\nMapping entry for EID-prefix %s, record TTL %s, %s, %s\n",
			rec.PrefixString(), ttlText(rec.TTL), auth, kind); err != nil {
			return err
		}
		if len(rec.Locators) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  Locator\tPri/Wgt\tMPri/MWgt\tState")
		for k := range rec.Locators {
			l := &rec.Locators[k]
			fmt.Fprintf(tw, "  %s\t%d/%d\t%d/%d\t%s\n", l.Address, l.Priority, l.Weight, l.MPriority, l.MWeight, locatorState(l))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func ttlText(m uint32) string {
	switch m {
	case 0xffffffff:
		return "unlimited"
	case 1:
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", m)
}
