package main

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lispd/lispd/internal/cli"
	"github.com/lispd/lispd/internal/loadgen"
	"github.com/lispd/lispd/wire"
)

// benchOptions are the flags of lispctl bench register|request|flood.
type benchOptions struct {
	target   string
	source   string
	rate     float64
	duration time.Duration
	count    uint64
	drain    time.Duration
	prefixes int
	eidBase  string
	eidLen   int
	sockets  int
	batch    int
	iid      uint32
	json     bool

	keyID          uint8
	algorithm      string
	secret         string
	secretFile     string
	rloc           string
	ttl            uint32
	proxyReply     bool
	xtrIDPerPrefix bool
	siteID         uint64

	itrRLOC string
	lispSec bool
	kind    string
}

const benchLong = `Load-test a Map-Server or Map-Resolver, lispd or any other implementation.

  bench register   Map-Registers with want-map-notify; counts the Map-Notifies
                   whose nonce matches and whose HMAC verifies (latency is
                   register → notify)
  bench request    Map-Requests in ECMs, like lig, for random EIDs inside the
                   prefixes; counts the Map-Replies whose nonce matches
                   (latency is request → reply)
  bench flood      garbage and badly authenticated Map-Registers as fast as
                   possible, for denial-of-service testing

Messages are encoded before the run and sent in batches (sendmmsg) from
--sockets UDP sockets, paced to --rate messages per second (0: as fast as
possible) for --duration or --count messages. The EIDs are --prefixes
prefixes of length --eid-len carved from --eid-base (by default /32s from
198.18.0.0, the benchmarking range): 198.18.0.0/32, 198.18.0.1/32, ...

After the last message bench waits up to --drain for answers still on the
way, then prints what it sent, the answers (and their rate), the losses,
the latency percentiles and the errors: send errors, answers failing
authentication, answers with a nonce of no outstanding message. --json
prints one object with the keys "sent", "replies", "lost", "send-rate",
"reply-rate", "p50-ms", "p90-ms", "p99-ms", "max-ms", "bad-auth",
"duration-seconds" and more.

Only point bench at systems you run: at full rate it is a flood.

Exit status: 0 when the run completed; 1 when register or request got no
answer at all, or nothing could be sent; 2 for usage errors.`

func newBenchCmd(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench {register|request|flood} --target ADDR[:PORT] [flags]",
		Short: "Load generator for Map-Servers and Map-Resolvers",
		Long:  benchLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cli.Usagef("bench needs a mode: register, request or flood")
		},
	}
	cmd.AddCommand(newBenchModeCmd(s, loadgen.Register), newBenchModeCmd(s, loadgen.Request), newBenchModeCmd(s, loadgen.Flood))
	return cmd
}

var benchModeHelp = map[loadgen.Mode][3]string{
	loadgen.Register: {"Send Map-Registers and count the Map-Notifies",
		`Send Map-Registers with want-map-notify set, cycling over the EID prefixes
(one record each, locator --rloc), signed with --key-id, --algorithm and
--secret, and count the Map-Notifies that answer them. A Map-Notify counts
when its nonce matches a Map-Register sent and its HMAC verifies with the
same key; the others are reported as bad-auth or unmatched. Nonces increase
from the current time, so a Map-Server checking that nonces grow accepts
consecutive runs.` + "\n\n" + benchCommonHelp,
		`  lispctl bench register --target 192.0.2.1 --secret s3cret --prefixes 10000 --rate 5000 --duration 30s
  lispctl bench register --target 127.0.0.1 --secret-file key.txt --eid-base 198.51.100.0 --eid-len 24 --count 100000 --json`},
	loadgen.Request: {"Send Map-Requests (in ECMs) and count the Map-Replies",
		`Send Map-Requests inside Encapsulated Control Messages, as lig does, for
random EIDs inside the prefixes, and count the Map-Replies whose nonce
matches. The ITR-RLOC is --itr-rloc or the sockets' local address; the
inner UDP source port is the sending socket's, so the replies come back to
it. Negative replies count as replies and are also shown apart.

With --lisp-sec the Map-Requests are protected with LISP-SEC (RFC 9303):
each ECM carries a One-Time Key wrapped (AES key wrap, HKDF-SHA256) with
--secret under --key-id, the key the Map-Resolver shares with its ITRs, and
asks for HMAC-SHA-256-128 and HKDF-SHA256. A Map-Reply then counts only
when it is signed and its PKT HMAC verifies with the MS-OTK; unsigned or
forged replies are reported as bad-auth.` + "\n\n" + benchCommonHelp,
		`  lispctl bench request --target 192.0.2.1 --prefixes 65536 --eid-len 24 --rate 20000 --duration 1m
  lispctl bench request --target 127.0.0.1 --count 1000000 --json | jq '."reply-rate"'
  lispctl bench request --target 127.0.0.1 --lisp-sec --key-id 1 --secret-file itr-key.txt --rate 50000`},
	loadgen.Flood: {"Flood a Map-Server with garbage and badly signed Map-Registers",
		`Send, as fast as possible (or at --rate), packets a Map-Server must drop:
  garbage             random bytes starting with plausible type nibbles,
                      real messages cut short, counts and lengths that lie
  bad-auth-register   Map-Registers for the prefixes with random, missing or
                      wrongly keyed authentication data, bad lengths and
                      unassigned algorithms
  mixed               both, alternating
and report the packet rate achieved. Use it to check that the target
survives, keeps serving legitimate traffic and counts the drops.

Only point it at systems you run.` + "\n\n" + benchCommonHelp,
		`  lispctl bench flood --target 127.0.0.1 --duration 10s
  lispctl bench flood --target 192.0.2.1 --kind bad-auth-register --prefixes 100 --rate 50000`},
}

const benchCommonHelp = `--target takes ADDR, ADDR:PORT or [ADDR]:PORT (default port 4342). With
--count and no --duration the run stops after --count messages; with both,
at whichever comes first.`

func newBenchModeCmd(s streams, mode loadgen.Mode) *cobra.Command {
	var o benchOptions
	h := benchModeHelp[mode]
	cmd := &cobra.Command{
		Use:     mode.String() + " --target ADDR[:PORT] [flags]",
		Short:   h[0],
		Long:    h[1],
		Example: h[2],
		Args:    cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("bench %s takes no arguments, got %q", mode, args)
			}
			c, err := o.config(cmd, mode)
			if err != nil {
				return err
			}
			return o.run(cmd, s, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target", "", "Map-Server/Map-Resolver to load: ADDR[:PORT] (required)")
	f.StringVar(&o.source, "source", "", "local address to bind the sockets to (default: the wildcard address)")
	f.Float64Var(&o.rate, "rate", 0, "messages per second to send; 0 sends as fast as possible")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
	f.Uint64Var(&o.count, "count", 0, "how many messages to send (then --duration applies only if given)")
	f.IntVar(&o.prefixes, "prefixes", 1, "number of distinct EID prefixes")
	f.StringVar(&o.eidBase, "eid-base", "198.18.0.0", "first EID prefix")
	f.IntVar(&o.eidLen, "eid-len", 0, "EID prefix length (default 32, or 128 for an IPv6 --eid-base)")
	f.Uint32Var(&o.iid, "instance-id", 0, "instance ID of the EIDs (sent in an Instance-ID LCAF when given)")
	f.IntVar(&o.sockets, "sockets", 16, "UDP source sockets (source ports) to spread the load over")
	f.IntVar(&o.batch, "batch", 64, "messages per sendmmsg/recvmmsg system call")
	f.BoolVar(&o.json, "json", false, "print the report as a JSON object")
	if mode != loadgen.Flood {
		f.DurationVar(&o.drain, "drain", time.Second, "after the last message, wait this long for answers still on the way")
	}
	if mode != loadgen.Request {
		f.Uint8Var(&o.keyID, "key-id", 0, "Key ID of the Map-Registers")
		f.StringVar(&o.algorithm, "algorithm", "hmac-sha-256-128", "authentication: hmac-sha-1-96 or hmac-sha-256-128")
	}
	switch mode {
	case loadgen.Register:
		f.StringVar(&o.secret, "secret", "", "the site's shared key (visible to other local users; see --secret-file)")
		f.StringVar(&o.secretFile, "secret-file", "", "read the shared key from this file (trailing newline removed)")
		f.StringVar(&o.rloc, "rloc", "", "locator to register (default: the sockets' local address)")
		f.Uint32Var(&o.ttl, "ttl", 1440, "record TTL in minutes")
		f.BoolVar(&o.proxyReply, "proxy-reply", false, "set the P bit: ask the Map-Server to answer Map-Requests for us")
		f.BoolVar(&o.xtrIDPerPrefix, "xtr-id-per-prefix", false, "send an xTR-ID and Site-ID, a different xTR-ID for each prefix")
		f.Uint64Var(&o.siteID, "site-id", 0, "send an xTR-ID and this Site-ID (I bit)")
	case loadgen.Request:
		f.StringVar(&o.itrRLOC, "itr-rloc", "", "ITR-RLOC, where the Map-Replies go (default: the sockets' local address)")
		f.BoolVar(&o.lispSec, "lisp-sec", false, "protect the Map-Requests with LISP-SEC; count only replies signed for them")
		f.Uint8Var(&o.keyID, "key-id", 0, "with --lisp-sec: Key ID of the key shared with the Map-Resolver")
		f.StringVar(&o.secret, "secret", "", "with --lisp-sec: the key shared with the Map-Resolver (visible to other local users; see --secret-file)")
		f.StringVar(&o.secretFile, "secret-file", "", "with --lisp-sec: read the key shared with the Map-Resolver from this file")
	case loadgen.Flood:
		f.StringVar(&o.kind, "kind", "garbage", "what to send: garbage, bad-auth-register or mixed")
	}
	return cmd
}

// config checks the flags and builds the load generator's configuration.
func (o *benchOptions) config(cmd *cobra.Command, mode loadgen.Mode) (loadgen.Config, error) {
	c := loadgen.Config{Mode: mode, Rate: o.rate, Count: o.count, Duration: o.duration, Drain: o.drain,
		Prefixes: o.prefixes, EIDLen: o.eidLen, Sockets: o.sockets, Batch: o.batch,
		InstanceID: o.iid, HasInstanceID: cmd.Flags().Changed("instance-id"),
		KeyID: o.keyID, TTL: o.ttl, ProxyReply: o.proxyReply, XTRIDPerPrefix: o.xtrIDPerPrefix,
		SiteID: o.siteID, HasSiteID: cmd.Flags().Changed("site-id"), FloodKind: loadgen.FloodKind(o.kind),
		LISPSEC: o.lispSec}
	var err error
	if o.target == "" {
		return c, cli.Usagef("--target ADDR[:PORT] is required")
	}
	if c.Target, err = parseTarget(o.target, wire.ControlPort, false); err != nil {
		return c, cli.Usagef("--target: %v", err)
	}
	if o.count > 0 && !cmd.Flags().Changed("duration") {
		c.Duration = 0
	}
	switch {
	case o.rate < 0:
		return c, cli.Usagef("--rate must not be negative")
	case o.duration <= 0 && c.Count == 0:
		return c, cli.Usagef("--duration must be positive")
	case o.prefixes < 1:
		return c, cli.Usagef("--prefixes must be at least 1")
	case o.sockets < 1 || o.sockets > loadgen.MaxSockets:
		return c, cli.Usagef("--sockets must be 1 to %d", loadgen.MaxSockets)
	case o.batch < 1 || o.batch > loadgen.MaxBatch:
		return c, cli.Usagef("--batch must be 1 to %d", loadgen.MaxBatch)
	case o.drain < 0:
		return c, cli.Usagef("--drain must not be negative")
	}
	if o.drain == 0 {
		c.Drain = -1 // asked for no wait
	}
	if c.EIDBase, err = netip.ParseAddr(o.eidBase); err != nil {
		return c, cli.Usagef("--eid-base: %v", err)
	}
	c.EIDBase = c.EIDBase.Unmap()
	if bits := c.EIDBase.BitLen(); o.eidLen < 0 || o.eidLen > bits || (cmd.Flags().Changed("eid-len") && o.eidLen == 0) {
		return c, cli.Usagef("--eid-len must be 1 to %d for %s", bits, c.EIDBase)
	}
	addr := func(flag, s string) (netip.Addr, error) {
		if s == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return a, cli.Usagef("--%s: %v", flag, err)
		}
		return a.Unmap(), nil
	}
	if c.Source, err = addr("source", o.source); err != nil {
		return c, err
	}
	if c.Source.IsValid() && c.Source.Is4() != c.Target.Addr().Is4() {
		return c, cli.Usagef("--source %s is not of --target's address family", c.Source)
	}
	if c.RLOC, err = addr("rloc", o.rloc); err != nil {
		return c, err
	}
	if c.ITRRLOC, err = addr("itr-rloc", o.itrRLOC); err != nil {
		return c, err
	}
	if mode != loadgen.Request {
		alg, ok := wire.ParseAuthAlg(o.algorithm)
		if !ok || (alg != wire.AuthHMACSHA1 && alg != wire.AuthHMACSHA256) {
			return c, cli.Usagef("--algorithm %q: want hmac-sha-1-96 or hmac-sha-256-128", o.algorithm)
		}
		c.Algorithm = alg
	}
	if mode == loadgen.Request && !o.lispSec && (o.secret != "" || o.secretFile != "" || cmd.Flags().Changed("key-id")) {
		return c, cli.Usagef("--key-id, --secret and --secret-file of bench request go with --lisp-sec")
	}
	if mode == loadgen.Register || o.lispSec {
		switch {
		case o.secret != "" && o.secretFile != "":
			return c, cli.Usagef("give --secret or --secret-file, not both")
		case o.secretFile != "":
			b, err := os.ReadFile(o.secretFile)
			if err != nil {
				return c, inputError(fmt.Errorf("--secret-file: %w", err))
			}
			c.Secret = []byte(strings.TrimRight(string(b), "\r\n"))
		default:
			c.Secret = []byte(o.secret)
		}
		if len(c.Secret) == 0 && mode == loadgen.Register {
			return c, cli.Usagef("--secret or --secret-file is required: the key the Map-Server has for the prefixes")
		}
		if len(c.Secret) == 0 {
			return c, cli.Usagef("--lisp-sec needs --secret or --secret-file: the key shared with the Map-Resolver")
		}
	}
	if mode == loadgen.Flood {
		switch c.FloodKind {
		case loadgen.FloodGarbage, loadgen.FloodBadAuth, loadgen.FloodMixed:
		default:
			return c, cli.Usagef("--kind %q: want garbage, bad-auth-register or mixed", o.kind)
		}
	}
	return c, nil
}

func (o *benchOptions) run(cmd *cobra.Command, s streams, c loadgen.Config) error {
	rep, err := loadgen.Run(cmd.Context(), c)
	if err != nil {
		// The configuration was checked: what is left is the environment
		// (no route to the target, no socket).
		return &cli.Error{Code: cli.ExitUsage, Err: fmt.Errorf("bench %s: %w", c.Mode, err)}
	}
	out := bufio.NewWriter(s.out)
	if o.json {
		var b []byte
		if b, err = marshalObject(rep); err == nil {
			_, err = fmt.Fprintf(out, "%s\n", b)
		}
	} else {
		err = rep.WriteText(out)
	}
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return outputError(err)
	}
	switch {
	case rep.Sent == 0:
		return &cli.Error{Code: cli.ExitFailed, Err: fmt.Errorf("bench %s: nothing could be sent (%d send errors)", c.Mode, rep.SendErrors)}
	case c.Mode != loadgen.Flood && rep.Replies == 0:
		return &cli.Error{Code: cli.ExitFailed, Err: fmt.Errorf("bench %s: no answer from %s", c.Mode, c.Target)}
	}
	return nil
}
